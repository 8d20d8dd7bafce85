"""Sample resident ID cards for the simulated ID-card reader.

Made-up people; the ID numbers follow GB 11643-1999 (region, birth date, sequence, MOD 11-2
check character), except where a card is deliberately wrong. Each card's "photo" is 1024
deterministic bytes standing in for the card's compressed WLT image.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from branchline.drivers.id_reader.frames import PHOTO_LEN
from branchline.drivers.id_reader.identity import LONG_TERM, IdentityCard, encode_identity


@dataclass(frozen=True)
class SampleCard:
    card: IdentityCard
    description: str

    @property
    def text(self) -> bytes:
        return encode_identity(self.card)


def sample_photo(seed: str) -> bytes:
    # A seeded pattern: the same card always has the same photo (and photo_sha256).
    return random.Random(f"photo:{seed}").randbytes(PHOTO_LEN)


def _with_photo(card: IdentityCard) -> IdentityCard:
    return replace(card, photo=sample_photo(card.id_number))


SAMPLE_CARDS: dict[str, SampleCard] = {
    "valid": SampleCard(
        _with_photo(
            IdentityCard(
                name="李秀英",
                sex_code="2",
                ethnicity_code="01",
                birth_date="19491231",
                address="北京市朝阳区建国路88号",
                id_number="11010519491231002X",
                issuing_authority="北京市公安局朝阳分局",
                valid_from="20200601",
                valid_to="20400601",
            )
        ),
        "valid card, check character X, valid to 2040-06-01",
    ),
    "expired": SampleCard(
        _with_photo(
            IdentityCard(
                name="陈伟",
                sex_code="1",
                ethnicity_code="01",
                birth_date="19950612",
                address="广东省深圳市福田区福华一路6号",
                id_number="440304199506123513",
                issuing_authority="深圳市公安局福田分局",
                valid_from="20100315",
                valid_to="20200315",
            )
        ),
        "expired on 2020-03-15",
    ),
    "bad_check_digit": SampleCard(
        _with_photo(
            IdentityCard(
                name="王磊",
                sex_code="1",
                ethnicity_code="01",
                birth_date="19880715",
                address="上海市黄浦区南京东路100号",
                id_number="310101198807150037",  # the check character should be 6
                issuing_authority="上海市公安局黄浦分局",
                valid_from="20180720",
                valid_to="20380720",
            )
        ),
        "ID number with a wrong check character",
    ),
    "long_term": SampleCard(
        _with_photo(
            IdentityCard(
                name="赵桂兰",
                sex_code="2",
                ethnicity_code="03",
                birth_date="19630805",
                address="江苏省南京市玄武区中山路1号",
                id_number="320102196308052422",
                issuing_authority="南京市公安局玄武分局",
                valid_from="20100520",
                valid_to=LONG_TERM,
            )
        ),
        "long-term (长期) card, Hui ethnicity",
    ),
}
