"""The EMV read dialogue against the simulator's chip model, APDU by APDU (no serial line)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from branchline.drivers.card_reader import apdu, emv_read
from branchline.drivers.card_reader.apdu import CommandApdu, ResponseApdu, parse_response
from branchline.drivers.card_reader.emv_read import ChipError
from branchline.sim.card.emv_card import ChipCard, EmvApplication
from branchline.sim.card.samples import SAMPLE_CARDS

MASTERCARD = EmvApplication(
    aid=bytes.fromhex("A0000000041010"),
    label="MASTERCARD",
    priority=2,
    pan="5555555555554444",
    expiry=date(2030, 6, 30),
    effective=date(2024, 1, 1),
    cardholder_name="TEST/MC",
    pdol=b"",
)


class Recorder:
    def __init__(self, card: ChipCard) -> None:
        self.card = card
        self.sent: list[CommandApdu] = []
        assert card.power_on() is not None

    def __call__(self, command: CommandApdu) -> ResponseApdu:
        self.sent.append(command)
        response = parse_response(self.card.transmit(command.encode()))
        assert isinstance(response, ResponseApdu)
        return response


def visa_chip() -> ChipCard:
    factory = SAMPLE_CARDS["visa"].chip
    assert factory is not None
    return factory()


def test_visa_t0_card_through_pse_with_get_response_and_wrong_le() -> None:
    raw = Recorder(visa_chip())
    read = emv_read.read_application(emv_read.with_follow_up(raw))
    assert read.aid == bytes.fromhex("A0000000031010")
    assert read.app_label == "VISA CREDIT"
    assert read.pan == "4761739001010010"
    assert (read.expiry, read.expiry_date) == ("2031-12", "2031-12-31")
    assert read.cardholder_name == "TEST/VISA CARD"
    assert read.track2 is not None and read.track2.pan == read.pan
    ins = [c.ins for c in raw.sent]
    assert ins[0] == 0xA4 and raw.sent[0].data == apdu.PSE
    assert 0xC0 in ins, "61xx was followed by GET RESPONSE"
    rereads = [c for c in raw.sent if c.ins == 0xB2 and c.le != 256]
    assert rereads, "6Cxx was followed by a resend with the card's Le"
    gpo = next(c for c in raw.sent if c.ins == 0xA8)
    assert gpo.data[:2] == bytes([0x83, 12])  # 9F1A 2 + 5F2A 2 + 9A 3 + 9C 1 + 9F37 4


def test_without_pse_falls_back_to_the_aid_list_and_t1_card() -> None:
    card = ChipCard((MASTERCARD,), t0=False, with_pse=False)
    raw = Recorder(card)
    read = emv_read.read_application(emv_read.with_follow_up(raw))
    assert read.aid == MASTERCARD.aid and read.pan == "5555555555554444"
    assert not any(c.ins == 0xC0 for c in raw.sent)


def test_directory_priority_picks_the_best_application() -> None:
    visa = replace(SAMPLE_CARDS["visa"].chip().applications[0], priority=3)  # type: ignore[misc]
    card = ChipCard((visa, MASTERCARD))
    read = emv_read.read_application(emv_read.with_follow_up(Recorder(card)))
    assert read.aid == MASTERCARD.aid


def test_card_without_a_known_application() -> None:
    odd = replace(MASTERCARD, aid=bytes.fromhex("F000000001"))
    card = ChipCard((odd,), with_pse=False)
    with pytest.raises(ChipError) as raised:
        emv_read.read_application(emv_read.with_follow_up(Recorder(card)))
    assert raised.value.code == "no_application"


def test_follow_up_loop_is_bounded() -> None:
    def always_61(command: CommandApdu) -> ResponseApdu:
        return ResponseApdu(b"", 0x61, 0x10)

    with pytest.raises(ChipError) as raised:
        emv_read.with_follow_up(always_61)(apdu.select_by_name(apdu.PSE))
    assert raised.value.code == "chip_follow_up_loop"


def test_bad_pan_on_the_chip_is_reported_without_its_digits() -> None:
    bad = replace(MASTERCARD, pan="5555555555554445")  # Luhn fails
    card = ChipCard((bad,), with_pse=False)
    with pytest.raises(ChipError) as raised:
        emv_read.read_application(emv_read.with_follow_up(Recorder(card)))
    assert raised.value.code == "pan_check_digit"
    assert "5555" not in str(raised.value)


def test_gpo_refused_names_the_step() -> None:
    def transmit(command: CommandApdu) -> ResponseApdu:
        if command.ins == 0xA8:
            return ResponseApdu(b"", 0x69, 0x85)
        return Recorder.__call__(recorder, command)

    recorder = Recorder(ChipCard((MASTERCARD,)))
    with pytest.raises(ChipError) as raised:
        emv_read.read_application(emv_read.with_follow_up(transmit))
    assert raised.value.code == "chip_sw_6985"
    assert "GET PROCESSING OPTIONS" in raised.value.message
