"""The cards a scripted customer can insert into the simulated reader.

PANs are published test numbers (Luhn-valid, issued to no one): 4761739001010010 is Visa's
test PAN, 5555555555554444 and 4111111111111111 are the common Mastercard and Visa test
numbers. Each insertion gets a fresh chip (session state does not survive the card leaving).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from branchline.drivers.card_reader.tracks import Track1, Track2, encode_track1, encode_track2
from branchline.sim.card.emv_card import ChipCard, EmvApplication

VISA_AID = bytes.fromhex("A0000000031010")


@dataclass(frozen=True)
class SampleCard:
    name: str
    description: str
    track1: str | None
    track2: str | None
    track3: str | None = None
    chip: Callable[[], ChipCard] | None = None

    def new_chip(self) -> ChipCard | None:
        return self.chip() if self.chip is not None else None


def _visa_app() -> EmvApplication:
    return EmvApplication(
        aid=VISA_AID,
        label="VISA CREDIT",
        priority=1,
        pan="4761739001010010",
        expiry=date(2031, 12, 31),
        effective=date(2024, 1, 1),
        cardholder_name="TEST/VISA CARD",
    )


def _tracks(pan: str, name: str, expiry: str, service: str) -> tuple[str, str]:
    return (
        encode_track1(Track1(pan, name, expiry, service, "0000000000000000")),
        encode_track2(Track2(pan, expiry, service, "10000000000")),
    )


_VISA_T1, _VISA_T2 = _tracks("4761739001010010", "TEST/VISA CARD", "3112", "201")
_MAG_T1, _MAG_T2 = _tracks("5555555555554444", "TEST/MAGSTRIPE", "3006", "101")
_MUTE_T1, _MUTE_T2 = _tracks("4111111111111111", "TEST/MUTE CHIP", "2909", "201")

SAMPLE_CARDS: dict[str, SampleCard] = {
    card.name: card
    for card in (
        SampleCard(
            "visa",
            "Visa test card 4761739001010010: tracks 1+2 and an EMV chip (T=0, PSE, PDOL)",
            _VISA_T1,
            _VISA_T2,
            chip=lambda: ChipCard((_visa_app(),)),
        ),
        SampleCard(
            "magstripe",
            "Mastercard test card 5555555555554444: magnetic stripe only, no chip",
            _MAG_T1,
            _MAG_T2,
        ),
        SampleCard(
            "mute_chip",
            "Visa test card 4111111111111111: tracks 1+2, a chip that never answers reset",
            _MUTE_T1,
            _MUTE_T2,
            chip=lambda: ChipCard((), mute=True),
        ),
    )
}
