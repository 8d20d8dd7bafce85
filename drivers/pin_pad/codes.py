"""Branchline EPP command set: command codes, result codes, algorithms and limits.

The wire layout is in ``branchline.drivers.pin_pad.protocol``'s docstring.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum

REPLY_BIT = 0x80
SLOT_COUNT = 4
ALL_SLOTS = 0xFF
FORMAT_BY_KEY = 0xFF
PAN_MIN, PAN_MAX = 8, 19
PIN_MIN, PIN_MAX = 4, 12
SIGN_CHUNK = 200
SIGN_MAX = 0xFFFF


class Cmd(IntEnum):
    STATUS = 0x10
    GET_INFO = 0x11
    LOAD_KEY = 0x20
    GET_KCV = 0x21
    GET_KSN = 0x22
    ERASE_KEYS = 0x23
    START_PIN = 0x30
    CANCEL_ENTRY = 0x31
    CLEAR_ENTRY = 0x32
    KEY_EVENT = 0x40
    PIN_RESULT = 0x41
    SIGN_START = 0x50
    SIGN_READ = 0x51


class ResultCode(IntEnum):
    OK = 0x00
    UNKNOWN_COMMAND = 0x01
    BAD_PARAMETER = 0x02
    NO_KEY = 0x03
    KSN_EXHAUSTED = 0x04
    BUSY = 0x05
    TAMPER = 0x06
    NOT_IN_ENTRY = 0x07
    KEY_REJECTED = 0x08
    FORMAT_MISMATCH = 0x09
    CUSTOMER_CANCELED = 0x10
    ENTRY_TIMEOUT = 0x11
    HOST_CANCELED = 0x12

    @property
    def label(self) -> str:
        return self.name.lower()


class Algorithm(StrEnum):
    TDES = "tdes"
    AES = "aes"

    @property
    def wire(self) -> int:
        return 1 if self is Algorithm.TDES else 2

    @property
    def ksn_length(self) -> int:
        return 10 if self is Algorithm.TDES else 12

    @property
    def key_lengths(self) -> tuple[int, ...]:
        return (16,) if self is Algorithm.TDES else (16, 24, 32)

    @property
    def pin_format(self) -> int:
        """The ISO 9564 PIN block format this key produces."""
        return 0 if self is Algorithm.TDES else 4

    @property
    def kcv_length(self) -> int:
        return 3 if self is Algorithm.TDES else 5


ALGORITHM_BY_WIRE = {a.wire: a for a in Algorithm}
BLOCK_LENGTH = {0: 8, 4: 16}


class KeyKind(StrEnum):
    """KEY_EVENT kinds: what the customer pressed, never which digit."""

    DIGIT = "D"
    FULL = "F"
    CLEAR = "C"
    ENTER = "E"
    ENTER_REFUSED = "R"
    CANCEL = "X"


class SlotState(IntEnum):
    EMPTY = 0
    TDES = 1
    AES = 2


EXHAUSTED_BIT = 0x80


class SignState(IntEnum):
    SIGNING = 0
    DONE = 1
    TIMED_OUT = 2
    CANCELED = 3
