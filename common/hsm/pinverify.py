"""PIN verification methods that run inside the HSM: Visa PVV and IBM 3624 offset.

Visa PVV: the transformed security parameter (TSP) is the 11 rightmost PAN digits
excluding the check digit, the PVKI and the 4 leftmost PIN digits (16 digits = 8 bytes).
It is enciphered under the PVK pair (TDES, double length); the PVV is the first four
decimal digits of the ciphertext's hex digits scanned left to right, and if fewer than
four are found, a second scan takes the non-decimal digits minus 10 (IBM CCA "VISA PIN
Validation Value calculation method"; z/OS ICSF "PVV generation algorithm").

IBM 3624: the validation data (16 hex digits after padding) is enciphered under the PVK,
each hex digit of the ciphertext is replaced through the decimalisation table and the
leftmost n digits are the natural PIN; the offset is the customer PIN minus the natural
PIN digit by digit modulo 10 (IBM CCA "IBM 3624 PIN Offset calculation method").

Functions take raw key bytes; the backends look keys up. Only comparisons leave here.
"""

from __future__ import annotations

import hmac

from Crypto.Cipher import DES, DES3

from . import validate
from .errors import InvalidInputError, KeyLengthError

PIN_LENGTHS = range(4, 13)


def _encipher(pvk: bytes, data: bytes) -> bytes:
    if len(pvk) == 8:
        return bytes(DES.new(pvk, DES.MODE_ECB).encrypt(data))
    if len(pvk) not in (16, 24):
        raise KeyLengthError(f"PVK must be 8, 16 or 24 bytes long, got {len(pvk)}")
    try:
        return bytes(DES3.new(pvk, DES3.MODE_ECB).encrypt(data))
    except ValueError as exc:  # halves equal: a single-length key posing as double length
        raise KeyLengthError(
            "PVK is a single-length key masquerading as double length (equal halves)"
        ) from exc


def decimalize_pvv(ciphertext: bytes) -> str:
    """The Visa two-scan decimalisation of a ciphertext into four digits."""
    hex_digits = ciphertext.hex().upper()
    found = [c for c in hex_digits if c.isdigit()]
    if len(found) < 4:
        found += [str(int(c, 16) - 10) for c in hex_digits if not c.isdigit()]
    return "".join(found[:4])


def visa_pvv(pvk: bytes, pan: str, pvki: int, pin: str) -> str:
    """The 4-digit Visa PVV of ``pin`` for ``pan`` and key index ``pvki``."""
    account = validate.account12(pan)
    validate.pvki(pvki)
    validate.digits(pin, "PIN", PIN_LENGTHS)
    tsp = account[-11:] + str(pvki) + pin[:4]
    return decimalize_pvv(_encipher(pvk, bytes.fromhex(tsp)))


def visa_pvv_matches(pvk: bytes, pan: str, pin: str, record_pvki: int, record_pvv: str) -> bool:
    validate.digits(record_pvv, "PVV", range(4, 5))
    return hmac.compare_digest(visa_pvv(pvk, pan, record_pvki, pin), record_pvv)


def decimalize(ciphertext: bytes, table: str) -> str:
    """Replace each hex digit of the ciphertext by its entry in the decimalisation table."""
    validate.decimalization_table(table)
    return "".join(table[int(c, 16)] for c in ciphertext.hex())


def ibm3624_intermediate(pvk: bytes, validation_data: str, table: str, pad: str = "F") -> str:
    """All 16 decimalised digits; the natural PIN is their leftmost PIN-length digits."""
    data = validate.validation_data(validation_data, pad)
    return decimalize(_encipher(pvk, bytes.fromhex(data)), table)


def ibm3624_natural_pin(
    pvk: bytes, validation_data: str, table: str, length: int, pad: str = "F"
) -> str:
    if length not in PIN_LENGTHS:
        raise InvalidInputError(f"PIN length must be 4-12, got {length}")
    return ibm3624_intermediate(pvk, validation_data, table, pad)[:length]


def _digitwise(left: str, right: str, sign: int) -> str:
    return "".join(str((int(a) + sign * int(b)) % 10) for a, b in zip(left, right, strict=True))


def ibm3624_offset(pvk: bytes, validation_data: str, table: str, pin: str, pad: str = "F") -> str:
    """Offset = customer PIN - natural PIN, digit by digit modulo 10 (no borrow)."""
    validate.digits(pin, "PIN", PIN_LENGTHS)
    natural = ibm3624_natural_pin(pvk, validation_data, table, len(pin), pad)
    return _digitwise(pin, natural, -1)


def ibm3624_pin_from_offset(
    pvk: bytes, validation_data: str, table: str, offset: str, pad: str = "F"
) -> str:
    """Natural PIN + offset, digit by digit modulo 10 (no carry): the customer's PIN."""
    validate.digits(offset, "IBM 3624 offset", PIN_LENGTHS)
    natural = ibm3624_natural_pin(pvk, validation_data, table, len(offset), pad)
    return _digitwise(natural, offset, +1)


def ibm3624_matches(
    pvk: bytes, validation_data: str, table: str, pin: str, offset: str, pad: str = "F"
) -> bool:
    """True when ``pin`` is the PIN the stored offset stands for (lengths must agree)."""
    validate.digits(pin, "PIN", PIN_LENGTHS)
    expected = ibm3624_pin_from_offset(pvk, validation_data, table, offset, pad)
    return len(pin) == len(expected) and hmac.compare_digest(pin, expected)
