"""GA 467 ID-card reader framing (layout per drivers/id_reader/frames.py), the identity text
block and ID number validation."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from branchline.drivers.base import Completion
from branchline.drivers.id_reader import identity
from branchline.drivers.id_reader.frames import (
    PHOTO_LEN,
    TEXT_LEN,
    Command,
    Malformed,
    Reply,
    ReplyDecoder,
    Request,
    RequestDecoder,
    TextAndPhoto,
    encode_item,
    encode_reply,
    encode_request,
    encode_text_and_photo,
    parse_text_and_photo,
    sw3_info,
)
from branchline.drivers.id_reader.identity import IdentityCard

# The byte-for-byte examples of the find-card exchange.
FIND_CARD = bytes.fromhex("AA AA AA 96 69 00 03 20 01 22")
FIND_CARD_OK = bytes.fromhex("AA AA AA 96 69 00 08 00 00 9F 00 00 00 00 97")
# SAM status: LEN 3, CHK = 00^03^11^FF = ED.
SAM_STATUS = bytes.fromhex("AA AA AA 96 69 00 03 11 FF ED")
# No card: LEN 4 (SW1 SW2 SW3 CHK), CHK = 00^04^00^00^80 = 84.
NO_CARD = bytes.fromhex("AA AA AA 96 69 00 04 00 00 80 84")


def decode(
    decoder: ReplyDecoder | RequestDecoder, data: bytes, cuts: list[int] | None = None
) -> list[object]:
    out: list[object] = []
    points = sorted({c % (len(data) + 1) for c in cuts or []})
    edges = [0, *points, len(data)]
    for a, b in zip(edges, edges[1:], strict=False):
        out += decoder.feed(data[a:b])
    return out + decoder.flush()


def test_find_card_request_byte_for_byte() -> None:
    assert encode_request(Command.FIND_CARD) == FIND_CARD
    assert decode(RequestDecoder(), FIND_CARD) == [Request(0x20, 0x01)]
    assert Request(0x20, 0x01).command is Command.FIND_CARD


def test_find_card_reply_byte_for_byte() -> None:
    assert encode_reply(0x9F, bytes(4)) == FIND_CARD_OK
    [reply] = decode(ReplyDecoder(), FIND_CARD_OK)
    assert reply == Reply(0x00, 0x00, 0x9F, bytes(4))
    assert isinstance(reply, Reply) and reply.result.ok and reply.result.code == "card_found"


def test_other_hand_built_frames() -> None:
    assert encode_request(Command.SAM_STATUS) == SAM_STATUS
    assert encode_reply(0x80) == NO_CARD
    [reply] = decode(ReplyDecoder(), NO_CARD)
    assert isinstance(reply, Reply)
    error = reply.result.to_device_error()
    assert (error.code, error.completion) == ("no_card", Completion.USER_ERROR)


def test_sw3_table() -> None:
    assert sw3_info(0x90).ok and sw3_info(0x9F).ok
    assert sw3_info(0x10).code == "checksum_error"
    assert sw3_info(0x31).completion is Completion.FRAUD_ATTEMPT
    assert sw3_info(0x91).code == "no_content"
    assert sw3_info(0x47).code == "random_failed"
    assert sw3_info(0x66).code == "sam_not_authorised"
    unknown = sw3_info(0x55)
    assert unknown.code == "sw3_55" and not unknown.ok


def test_bad_checksum_names_expected_and_received() -> None:
    bad = FIND_CARD_OK[:-1] + b"\x98"
    assert decode(ReplyDecoder(), bad) == [Malformed("bad checksum: expected 0x97, got 0x98", bad)]


def test_bad_length_reported_at_once() -> None:
    assert ReplyDecoder().feed(bytes.fromhex("AA AA AA 96 69 00 02 00")) == [
        Malformed("bad length: LEN 2 outside 4..4096", bytes.fromhex("AA AA AA 96 69 00 02"))
    ]
    [item, *_] = ReplyDecoder().feed(bytes.fromhex("AA AA AA 96 69 FF FF"))
    assert isinstance(item, Malformed) and item.reason.startswith("bad length")


def test_garbage_and_extra_preamble_bytes_resynchronise() -> None:
    stream = b"\x01\x02\xaa" + FIND_CARD_OK + NO_CARD
    assert decode(ReplyDecoder(), stream) == [
        Malformed("3 unexpected byte(s) outside a frame", b"\x01\x02\xaa"),
        Reply(0, 0, 0x9F, bytes(4)),
        Reply(0, 0, 0x80),
    ]


def test_truncated_frame_reported_on_flush() -> None:
    decoder = ReplyDecoder()
    assert decoder.feed(FIND_CARD_OK[:9]) == []
    [item] = decoder.flush()
    assert isinstance(item, Malformed) and item.reason == "truncated frame: only 9 bytes"


def test_read_text_photo_reply_layout() -> None:
    text, photo = bytes(range(256)), bytes(1024)
    frame = encode_reply(0x90, encode_text_and_photo(text, photo))
    # LEN = SW1 SW2 SW3 + 4 length bytes + 256 + 1024 + CHK = 1288 = 0x0508.
    assert frame[:14] == bytes.fromhex("AA AA AA 96 69 05 08 00 00 90 01 00 04 00")
    [reply] = decode(ReplyDecoder(), frame)
    assert isinstance(reply, Reply)
    assert parse_text_and_photo(reply.data) == TextAndPhoto(text, photo)
    bad = parse_text_and_photo(reply.data[:-1])
    assert isinstance(bad, Malformed) and bad.reason.startswith("bad length")
    assert isinstance(parse_text_and_photo(b"\x01"), Malformed)


requests = st.builds(Request, st.integers(0, 255), st.integers(0, 255), st.binary(max_size=40))
replies = st.builds(
    Reply, st.integers(0, 255), st.integers(0, 255), st.integers(0, 255), st.binary(max_size=40)
)
cuts = st.lists(st.integers(0, 10_000), max_size=12)


@given(st.lists(replies, max_size=6), cuts)
def test_replies_round_trip_in_any_chunking(sent: list[Reply], where: list[int]) -> None:
    wire = b"".join(encode_item(r) for r in sent)
    assert decode(ReplyDecoder(), wire, where) == sent


@given(st.lists(requests, max_size=6), cuts)
def test_requests_round_trip_in_any_chunking(sent: list[Request], where: list[int]) -> None:
    wire = b"".join(encode_item(r) for r in sent)
    assert decode(RequestDecoder(), wire, where) == sent


@given(st.binary(max_size=600), cuts)
def test_random_bytes_never_raise_and_chunking_does_not_matter(
    data: bytes, where: list[int]
) -> None:
    for make in (ReplyDecoder, RequestDecoder):
        whole = decode(make(), data)
        assert decode(make(), data, where) == whole


@given(st.binary(max_size=300), cuts)
def test_random_bytes_around_preambles(data: bytes, where: list[int]) -> None:
    # Plenty of near-preambles so the resynchronisation paths actually run.
    noisy = data.replace(b"\x00", b"\xaa\xaa\xaa\x96\x69").replace(b"\x01", b"\xaa")
    assert decode(ReplyDecoder(), noisy, where) == decode(ReplyDecoder(), noisy)


@given(replies, st.data())
def test_any_single_byte_corruption_is_reported(reply: Reply, data: st.DataObject) -> None:
    wire = bytearray(encode_item(reply))
    at = data.draw(st.integers(0, len(wire) - 1))
    wire[at] = data.draw(st.integers(0, 255).filter(lambda b: b != wire[at]))
    out = decode(ReplyDecoder(), bytes(wire))
    assert out != [reply]
    assert any(isinstance(i, Malformed) for i in out)


@given(st.lists(replies, min_size=1, max_size=4), st.binary(max_size=60), cuts)
def test_replies_after_arbitrary_garbage_are_recovered(
    sent: list[Reply], garbage: bytes, where: list[int]
) -> None:
    wire = garbage + b"".join(encode_item(r) for r in sent)
    found = [i for i in decode(ReplyDecoder(), wire, where) if isinstance(i, Reply)]
    assert found[-len(sent) :] == sent


# --- identity ------------------------------------------------------------------------------

# 11010519491231002X is the widely published example ID number: region 110105 (Beijing,
# Chaoyang), born 1949-12-31, sequence 002 (even: a woman), check character X.
CARD = IdentityCard(
    name="张三",
    sex_code="2",
    ethnicity_code="01",
    birth_date="19491231",
    address="北京市朝阳区建国路1号",
    id_number="11010519491231002X",
    issuing_authority="北京市公安局朝阳分局",
    valid_from="20100101",
    valid_to=identity.LONG_TERM,
    photo=bytes(range(256)) * 4,
)


def test_text_block_layout() -> None:
    block = identity.encode_identity(CARD)
    assert len(block) == TEXT_LEN == 256
    # 张 U+5F20, 三 U+4E09, little-endian, then 13 UCS-2 spaces to fill 30 bytes.
    assert block[:4] == bytes.fromhex("205F094E") and block[4:30] == b"\x20\x00" * 13
    assert block[30:32] == "2".encode("utf-16-le")
    assert block[32:36] == "01".encode("utf-16-le")
    assert block[36:52] == "19491231".encode("utf-16-le")
    assert block[122:158] == CARD.id_number.encode("utf-16-le")
    assert block[188:204] == "20100101".encode("utf-16-le")
    assert block[204:208] == "长期".encode("utf-16-le")
    assert block[220:] == b"\x20\x00" * 18


def test_text_block_round_trip_and_labels() -> None:
    parsed = identity.parse_identity(identity.encode_identity(CARD), CARD.photo)
    assert parsed == CARD
    assert isinstance(parsed, IdentityCard)
    assert (parsed.sex, parsed.ethnicity, parsed.long_term) == ("female", "Han", True)
    odd = identity.parse_identity(identity.encode_identity(_with(CARD, ethnicity_code="77")))
    assert isinstance(odd, IdentityCard) and odd.ethnicity == "77"


def test_text_block_errors() -> None:
    assert isinstance(identity.parse_identity(bytes(255)), Malformed)
    assert isinstance(identity.parse_identity(bytes(256), b"short"), Malformed)
    lone_surrogate = b"\x00\xd8" + bytes(254)
    result = identity.parse_identity(lone_surrogate)
    assert isinstance(result, Malformed) and "name field" in result.reason
    with pytest.raises(ValueError):
        identity.encode_identity(_with(CARD, name="很长的名字" * 4))


def test_iso7064_check_characters() -> None:
    assert identity.check_character("11010519491231002") == "X"
    assert identity.check_character("44052418800101001") == "4"  # GB 11643-1999 example
    assert identity.id_number_problems("11010519491231002X") == []
    assert [p.code for p in identity.id_number_problems("110105194912310021")] == [
        "bad_check_digit"
    ]
    assert [p.code for p in identity.id_number_problems("1101051949123100")] == ["bad_id_format"]
    assert [p.code for p in identity.id_number_problems("1101051949123100AX")] == ["bad_id_format"]


def _with(card: IdentityCard, **changes: Any) -> IdentityCard:
    return replace(card, **changes)


def test_validation() -> None:
    today = date(2024, 6, 1)
    assert identity.validate(CARD, today) == []

    def codes(card: IdentityCard) -> list[str]:
        return [p.code for p in identity.validate(card, today)]

    assert codes(_with(CARD, id_number="110105194912310021")) == ["bad_check_digit"]
    assert codes(_with(CARD, birth_date="19491301")) == ["bad_birth_date"]
    assert codes(_with(CARD, birth_date="19500101")) == ["birth_date_mismatch"]
    assert codes(_with(CARD, sex_code="1")) == ["sex_mismatch"]
    assert codes(_with(CARD, valid_to="20240531")) == ["expired"]
    assert codes(_with(CARD, valid_to="20240601")) == []
    assert codes(_with(CARD, valid_from="20240602", valid_to="20440602")) == ["not_yet_valid"]
    assert codes(_with(CARD, valid_to="2044")) == ["bad_valid_to"]
    assert codes(_with(CARD, valid_from="")) == ["bad_valid_from"]


cjk = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5)
ascii_ = st.sampled_from("ABCDEFGHXYZ0123456789·")
yyyymmdd = st.dates(date(1900, 1, 1), date(2100, 12, 31)).map(lambda d: d.strftime("%Y%m%d"))
field_text = st.text(st.one_of(cjk, ascii_), max_size=15).map(str.rstrip)
cards = st.builds(
    IdentityCard,
    name=field_text,
    sex_code=st.sampled_from(["0", "1", "2", "9"]),
    ethnicity_code=st.sampled_from(sorted(identity.ETHNICITIES)),
    birth_date=yyyymmdd,
    address=st.text(st.one_of(cjk, ascii_), max_size=35).map(str.rstrip),
    id_number=st.text("0123456789", min_size=17, max_size=17).map(
        lambda s: s + identity.check_character(s)
    ),
    issuing_authority=field_text,
    valid_from=yyyymmdd,
    valid_to=st.one_of(st.just(identity.LONG_TERM), yyyymmdd),
    photo=st.binary(min_size=PHOTO_LEN, max_size=PHOTO_LEN),
)


@given(cards)
def test_cards_round_trip(card: IdentityCard) -> None:
    assert identity.parse_identity(identity.encode_identity(card), card.photo) == card
    assert not any(
        p.code in ("bad_id_format", "bad_check_digit")
        for p in identity.validate(card, date.today())
    )


@given(st.binary(min_size=256, max_size=256), st.dates())
def test_random_text_blocks_never_raise(block: bytes, today: date) -> None:
    parsed = identity.parse_identity(block)
    if isinstance(parsed, IdentityCard):
        identity.validate(parsed, today)
