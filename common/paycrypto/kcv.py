"""Key check values and DES odd parity.

TDES KCV: leftmost bytes of E(key, 8 zero bytes) (the legacy X9.24-1 method).
AES KCV: leftmost bytes of AES-CMAC(key, 16 zero bytes) (X9.24-1:2017 CMAC method).
Mismatches are reported without either value: the caller already has both.
"""

from __future__ import annotations

import hmac

from Crypto.Cipher import AES
from Crypto.Hash import CMAC

from ._des import tdes_encrypt
from ._keys import require_key
from .errors import KeyCheckError

TDES_KCV_LENGTH = 3
AES_KCV_LENGTH = 5

_DES_LENGTHS = (8, 16, 24)
_AES_LENGTHS = (16, 24, 32)


def _check_length(length: int, block: int) -> None:
    if not 1 <= length <= block:
        raise KeyCheckError(f"KCV length must be 1..{block} bytes, got {length}")


def tdes_kcv(key: bytes, length: int = TDES_KCV_LENGTH) -> bytes:
    """Leftmost ``length`` bytes of the DES/TDES encryption of eight zero bytes."""
    _check_length(length, 8)
    key = require_key(key, _DES_LENGTHS, "TDES key")
    return tdes_encrypt(key, bytes(8))[:length]


def aes_kcv(key: bytes, length: int = AES_KCV_LENGTH) -> bytes:
    """Leftmost ``length`` bytes of AES-CMAC over sixteen zero bytes."""
    _check_length(length, 16)
    key = require_key(key, _AES_LENGTHS, "AES key")
    return bytes(CMAC.new(key, bytes(16), ciphermod=AES).digest())[:length]


def _verify(actual: bytes, expected: bytes, what: str) -> None:
    if not hmac.compare_digest(actual, bytes(expected)):
        raise KeyCheckError(f"{what} key check value does not match the expected value")


def verify_tdes_kcv(key: bytes, expected: bytes) -> None:
    """Raise ``KeyCheckError`` unless ``key``'s TDES KCV starts with ``expected``."""
    _verify(tdes_kcv(key, len(expected)), expected, "TDES")


def verify_aes_kcv(key: bytes, expected: bytes) -> None:
    """Raise ``KeyCheckError`` unless ``key``'s AES-CMAC KCV starts with ``expected``."""
    _verify(aes_kcv(key, len(expected)), expected, "AES")


def _odd(byte: int) -> bool:
    return byte.bit_count() % 2 == 1


def has_odd_parity(key: bytes) -> bool:
    """True when every byte of a DES/TDES key has an odd number of one-bits."""
    key = require_key(key, _DES_LENGTHS, "DES key")
    return all(_odd(b) for b in key)


def check_odd_parity(key: bytes) -> None:
    """Raise ``KeyCheckError`` naming the first byte with even parity."""
    key = require_key(key, _DES_LENGTHS, "DES key")
    for index, byte in enumerate(key):
        if not _odd(byte):
            raise KeyCheckError(f"DES key byte {index} has even parity, expected odd")


def fix_odd_parity(key: bytes) -> bytes:
    """Set each byte's low bit so that it has odd parity (DES ignores that bit)."""
    key = require_key(key, _DES_LENGTHS, "DES key")
    return bytes(b if _odd(b) else b ^ 0x01 for b in key)
