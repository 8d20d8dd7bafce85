"""Payload fields of the EPP command set: a bounds-checked reader and the shared checks.

Each check raises ``BadPayload`` with a message naming the message and the field; the
decoders turn it into ``BadRequest`` (the pad answers bad_parameter) or ``Malformed``.
"""

from __future__ import annotations

from branchline.drivers.pin_pad.codes import (
    ALGORITHM_BY_WIRE,
    ALL_SLOTS,
    PAN_MAX,
    PAN_MIN,
    SLOT_COUNT,
    Algorithm,
)


class BadPayload(Exception):
    """A payload that does not parse; the message names the field."""


class PayloadReader:
    def __init__(self, data: bytes, what: str) -> None:
        self._data = data
        self._at = 0
        self._what = what

    def byte(self, name: str) -> int:
        if self._at >= len(self._data):
            raise BadPayload(f"{self._what}: payload ends before {name}")
        value = self._data[self._at]
        self._at += 1
        return value

    def chunk(self, name: str) -> bytes:
        size = self.byte(f"{name} length")
        if self._at + size > len(self._data):
            raise BadPayload(f"{self._what}: {name} length {size} runs past the payload")
        value = self._data[self._at : self._at + size]
        self._at += size
        return value

    def text(self, name: str) -> str:
        raw = self.chunk(name)
        if not all(0x20 <= b < 0x7F for b in raw):
            raise BadPayload(f"{self._what}: {name} is not printable ASCII")
        return raw.decode("ascii")

    def end(self) -> None:
        if self._at != len(self._data):
            raise BadPayload(
                f"{self._what}: {len(self._data) - self._at} unexpected trailing byte(s)"
            )


def lv(data: bytes) -> bytes:
    if len(data) > 0xFF:
        raise ValueError("field longer than 255 bytes")
    return bytes([len(data)]) + data


def read_algorithm(value: int, what: str) -> Algorithm:
    try:
        return ALGORITHM_BY_WIRE[value]
    except KeyError:
        raise BadPayload(f"{what}: unknown algorithm 0x{value:02X} (1 tdes, 2 aes)") from None


def check_slot(value: int, what: str, allow_all: bool = False) -> int:
    if value < SLOT_COUNT or (allow_all and value == ALL_SLOTS):
        return value
    raise BadPayload(f"{what}: key slot {value} outside 0..{SLOT_COUNT - 1}")


def check_key(algorithm: Algorithm, key: bytes, ksn: bytes, what: str) -> None:
    if len(key) not in algorithm.key_lengths:
        raise BadPayload(
            f"{what}: {algorithm} key must be {'/'.join(map(str, algorithm.key_lengths))} "
            f"bytes, got {len(key)}"
        )
    if len(ksn) != algorithm.ksn_length:
        raise BadPayload(
            f"{what}: {algorithm} KSN must be {algorithm.ksn_length} bytes, got {len(ksn)}"
        )


def check_pan(pan: str, what: str) -> None:
    if not PAN_MIN <= len(pan) <= PAN_MAX or not pan.isdigit() or not pan.isascii():
        raise BadPayload(f"{what}: PAN must be {PAN_MIN}-{PAN_MAX} ASCII digits")
