"""Input checks shared by every backend and the payShield codec.

Each check raises an :mod:`~branchline.common.hsm.errors` class naming the parameter and
the expected form; values that could be secret (PINs, PIN blocks, keys) are never quoted,
and PANs only masked.
"""

from __future__ import annotations

import re

from .errors import (
    DecimalizationTableError,
    InvalidAccountError,
    InvalidInputError,
    UnsupportedFormatError,
)

TDES_KSN_LENGTH = 10
AES_KSN_LENGTH = 12
KEY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,55}(@previous)?")
_HEX = re.compile(r"[0-9A-Fa-f]*")
_DIGITS = re.compile(r"[0-9]*")


def key_name(name: object, what: str = "key name") -> str:
    if not isinstance(name, str) or not KEY_NAME.fullmatch(name):
        raise InvalidInputError(
            f"{what} must be 1-56 characters of letters, digits, '.', '_' or '-' "
            "(starting with a letter or digit), optionally ending in '@previous'"
        )
    return name


def pan(value: object) -> str:
    if not isinstance(value, str) or not 12 <= len(value) <= 19 or not _DIGITS.fullmatch(value):
        length = len(value) if isinstance(value, str) else 0
        raise InvalidAccountError(f"PAN must be 12-19 decimal digits, got {length} characters")
    return value


def account12(value: str) -> str:
    """The 12 rightmost PAN digits excluding the check digit (payShield account field)."""
    return pan(value)[:-1][-12:].rjust(12, "0")


def ksn(value: object) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise InvalidInputError(f"KSN must be bytes, got {type(value).__name__}")
    data = bytes(value)
    if len(data) not in (TDES_KSN_LENGTH, AES_KSN_LENGTH):
        raise InvalidInputError(
            f"KSN must be {TDES_KSN_LENGTH} bytes (TDES DUKPT) or {AES_KSN_LENGTH} bytes "
            f"(AES DUKPT), got {len(data)}"
        )
    return data


def block(value: object, length: int, what: str = "PIN block") -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise InvalidInputError(f"{what} must be bytes, got {type(value).__name__}")
    data = bytes(value)
    if len(data) != length:
        raise InvalidInputError(f"{what} must be {length} bytes long, got {len(data)}")
    return data


def hex_bytes(text: object, what: str, lengths: tuple[int, ...] | None = None) -> bytes:
    """Parse hex (spaces allowed); ``lengths`` in bytes. The text itself is never echoed."""
    if not isinstance(text, str):
        raise InvalidInputError(f"{what} must be a hex string")
    compact = "".join(text.split())
    if len(compact) % 2 or not _HEX.fullmatch(compact):
        raise InvalidInputError(f"{what} must be an even number of hex digits 0-9 A-F")
    data = bytes.fromhex(compact)
    if lengths is not None and len(data) not in lengths:
        expected = " or ".join(str(n * 2) for n in lengths)
        raise InvalidInputError(f"{what} must be {expected} hex digits, got {len(compact)}")
    return data


def pin_format(value: object, allowed: tuple[int, ...], what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value not in allowed:
        names = ", ".join(str(f) for f in allowed)
        raise UnsupportedFormatError(f"{what} must be ISO 9564 format {names}, got {value!r}")
    return value


def fixed_key_inputs(pin_block: object, pan_value: object, in_format: object) -> tuple[bytes, str]:
    """A fixed-key (TPK or ZPK) PIN block's inputs checked: the 8-byte block, its format
    (ISO 0, 1 or 3) and the PAN; (block, PAN)."""
    block_bytes = block(pin_block, 8)
    pin_format(in_format, (0, 1, 3), "source PIN block format")
    return block_bytes, pan(pan_value)


def pvki(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 9:
        raise InvalidInputError(f"PVKI must be a single digit 0-9, got {value!r}")
    return value


def digits(value: object, what: str, lengths: range) -> str:
    if not isinstance(value, str) or len(value) not in lengths or not _DIGITS.fullmatch(value):
        raise InvalidInputError(
            f"{what} must be {lengths.start}-{lengths.stop - 1} decimal digits"
            if len(lengths) > 1
            else f"{what} must be {lengths.start} decimal digits"
        )
    return value


def decimalization_table(value: object) -> str:
    if not isinstance(value, str) or len(value) != 16 or not _DIGITS.fullmatch(value):
        raise DecimalizationTableError("decimalisation table must be 16 decimal digits")
    return value


def validation_data(value: object, pad_char: object) -> str:
    """IBM 3624 validation data right-padded to 16 hex characters with ``pad_char``."""
    if not isinstance(pad_char, str) or len(pad_char) != 1 or not _HEX.fullmatch(pad_char):
        raise InvalidInputError("IBM 3624 pad character must be one hex digit")
    if not isinstance(value, str) or not 1 <= len(value) <= 16 or not _HEX.fullmatch(value):
        raise InvalidInputError("IBM 3624 validation data must be 1-16 hex digits")
    return value.upper().ljust(16, pad_char.upper())
