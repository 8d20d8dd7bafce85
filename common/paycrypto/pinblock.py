"""ISO 9564-1 PIN blocks: formats 0, 1 and 3 (8 bytes, TDES) and 4 (16 bytes, AES).

Formats 0 and 3 XOR the PIN field with a PAN field built from the rightmost 12 PAN
digits excluding the check digit; format 1 carries no PAN and fills with random
nibbles; format 4 enciphers the PIN field, XORs in a PAN field holding the whole PAN,
and enciphers again.

Randomness is injectable (``random_bytes(n) -> n bytes``) so tests are deterministic.
Error messages name positions and expected values only: a nibble that could be a PIN
digit is never printed, and neither is the PAN.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from Crypto.Cipher import AES

from ._des import EcbCipher, tdes_decrypt, tdes_encrypt
from ._keys import require_key, xor
from .errors import PinBlockError

RandomBytes = Callable[[int], bytes]

PIN_MIN_LENGTH = 4
PIN_MAX_LENGTH = 12
PAN_MAX_LENGTH = 19

_BLOCK = 8
_BLOCK4 = 16
_FORMAT4_FILL = 0xA
_DIGITS = frozenset("0123456789")


# --- nibble and field helpers -------------------------------------------------------


def _nibbles(data: bytes) -> list[int]:
    out: list[int] = []
    for byte in data:
        out += (byte >> 4, byte & 0x0F)
    return out


def _pack(nibbles: list[int]) -> bytes:
    return bytes((hi << 4) | lo for hi, lo in zip(nibbles[::2], nibbles[1::2], strict=True))


def _check_digits(value: object, what: str, lengths: range) -> str:
    if not isinstance(value, str):
        raise PinBlockError(f"{what} must be a str of digits, got {type(value).__name__}")
    if len(value) not in lengths:
        raise PinBlockError(
            f"{what} must be {lengths.start}-{lengths.stop - 1} digits long, got {len(value)}"
        )
    for index, char in enumerate(value):
        if char not in _DIGITS:
            raise PinBlockError(f"{what} character at position {index} is not a digit 0-9")
    return value


def _check_pin(pin: object) -> str:
    return _check_digits(pin, "PIN", range(PIN_MIN_LENGTH, PIN_MAX_LENGTH + 1))


def _check_block(block: object, size: int, what: str) -> bytes:
    if not isinstance(block, bytes | bytearray | memoryview):
        raise PinBlockError(f"{what} must be bytes, got {type(block).__name__}")
    data = bytes(block)
    if len(data) != size:
        raise PinBlockError(f"{what} must be {size} bytes long, got {len(data)}")
    return data


def _random(random_bytes: RandomBytes | None, count: int) -> bytes:
    data = (random_bytes or secrets.token_bytes)(count)
    if len(data) != count:
        raise PinBlockError(f"random_bytes({count}) returned {len(data)} bytes")
    return data


def _random_nibbles(random_bytes: RandomBytes | None, count: int, low: int) -> list[int]:
    """``count`` uniform nibbles in ``low..0xF`` (rejection sampling keeps them unbiased)."""
    span = 16 - low
    limit = 256 - 256 % span
    out: list[int] = []
    while len(out) < count:
        for byte in _random(random_bytes, count - len(out)):
            if byte < limit:
                out.append(low + byte % span)
    return out


def _pin_field_nibbles(fmt: int, pin: str, fill: list[int]) -> list[int]:
    return [fmt, len(pin), *(int(d) for d in pin), *fill]


def _decode_pin_nibbles(
    nibbles: list[int], fmt: int, fill_ok: Callable[[int], bool], fill_expected: str
) -> str:
    """Validate control, length, digits and fill of the first 16 nibbles; return the PIN."""
    label = f"PIN block format {fmt}"
    if nibbles[0] != fmt:
        raise PinBlockError(f"{label}: control nibble is 0x{nibbles[0]:X}, expected 0x{fmt:X}")
    length = nibbles[1]
    if not PIN_MIN_LENGTH <= length <= PIN_MAX_LENGTH:
        raise PinBlockError(
            f"{label}: PIN length nibble is 0x{length:X}, expected "
            f"0x{PIN_MIN_LENGTH:X}-0x{PIN_MAX_LENGTH:X}"
        )
    for pos in range(2, 2 + length):
        if nibbles[pos] > 9:
            raise PinBlockError(
                f"{label}: PIN digit at position {pos} is 0x{nibbles[pos]:X}, "
                "expected a decimal digit"
            )
    for pos in range(2 + length, 16):
        value = nibbles[pos]
        if not fill_ok(value):
            # A decimal nibble here may be a PIN digit (wrong length nibble): don't print it.
            shown = "a decimal digit" if value <= 9 else f"0x{value:X}"
            raise PinBlockError(
                f"{label}: fill nibble at position {pos} is {shown}, expected {fill_expected}"
            )
    return "".join(str(n) for n in nibbles[2 : 2 + length])


def _pan_field_format0(pan: object) -> bytes:
    pan = _check_digits(pan, "PAN", range(2, PAN_MAX_LENGTH + 1))
    # Rightmost 12 digits excluding the check digit, right-justified with zero padding.
    account = pan[:-1][-12:].rjust(12, "0")
    return _pack([0, 0, 0, 0, *(int(d) for d in account)])


# --- formats 0, 1 and 3 ---------------------------------------------------------------


def encode_format0(pin: str, pan: str) -> bytes:
    """ISO 9564-1 format 0: PIN field with 0xF fill XOR the PAN field."""
    pin = _check_pin(pin)
    field = _pack(_pin_field_nibbles(0, pin, [0xF] * (14 - len(pin))))
    return xor(field, _pan_field_format0(pan))


def decode_format0(block: bytes, pan: str) -> str:
    """Recover the PIN from a clear format 0 block; checks control, length and 0xF fill."""
    block = _check_block(block, _BLOCK, "PIN block format 0")
    field = xor(block, _pan_field_format0(pan))
    return _decode_pin_nibbles(_nibbles(field), 0, lambda n: n == 0xF, "0xF")


def encode_format1(pin: str, *, random_bytes: RandomBytes | None = None) -> bytes:
    """ISO 9564-1 format 1: no PAN; the fill is random (transaction-unique) nibbles."""
    pin = _check_pin(pin)
    fill = _random_nibbles(random_bytes, 14 - len(pin), 0x0)
    return _pack(_pin_field_nibbles(1, pin, fill))


def decode_format1(block: bytes) -> str:
    """Recover the PIN from a clear format 1 block (any fill nibble is allowed)."""
    block = _check_block(block, _BLOCK, "PIN block format 1")
    return _decode_pin_nibbles(_nibbles(block), 1, lambda n: True, "any value")


def encode_format3(pin: str, pan: str, *, random_bytes: RandomBytes | None = None) -> bytes:
    """ISO 9564-1 format 3: like format 0 but the fill is random nibbles 0xA-0xF."""
    pin = _check_pin(pin)
    fill = _random_nibbles(random_bytes, 14 - len(pin), 0xA)
    field = _pack(_pin_field_nibbles(3, pin, fill))
    return xor(field, _pan_field_format0(pan))


def decode_format3(block: bytes, pan: str) -> str:
    """Recover the PIN from a clear format 3 block; fill nibbles must be 0xA-0xF."""
    block = _check_block(block, _BLOCK, "PIN block format 3")
    field = xor(block, _pan_field_format0(pan))
    return _decode_pin_nibbles(_nibbles(field), 3, lambda n: n >= 0xA, "0xA-0xF")


def pin_block_format(block: bytes) -> int:
    """Format number (control nibble) of a clear 8-byte block or 16-byte format 4 field."""
    if not isinstance(block, bytes | bytearray | memoryview) or len(block) not in (8, 16):
        raise PinBlockError("PIN block must be 8 or 16 bytes long")
    return bytes(block)[0] >> 4


def encode_pin_block(
    pin: str, fmt: int, pan: str | None = None, *, random_bytes: RandomBytes | None = None
) -> bytes:
    """Encode a clear 8-byte PIN block of format 0, 1 or 3."""
    if fmt == 1:
        return encode_format1(pin, random_bytes=random_bytes)
    if fmt not in (0, 3):
        raise PinBlockError(f"PIN block format {fmt} is not supported here (0, 1 or 3)")
    if pan is None:
        raise PinBlockError(f"PIN block format {fmt} needs the PAN")
    if fmt == 0:
        return encode_format0(pin, pan)
    return encode_format3(pin, pan, random_bytes=random_bytes)


def decode_pin_block(block: bytes, pan: str | None = None) -> str:
    """Decode a clear 8-byte PIN block, choosing format 0, 1 or 3 by its control nibble."""
    block = _check_block(block, _BLOCK, "PIN block")
    fmt = block[0] >> 4
    if fmt == 1:
        return decode_format1(block)
    if fmt not in (0, 3):
        raise PinBlockError(f"PIN block control nibble is 0x{fmt:X}, expected 0x0, 0x1 or 0x3")
    if pan is None:
        raise PinBlockError(f"PIN block format {fmt} needs the PAN")
    return decode_format0(block, pan) if fmt == 0 else decode_format3(block, pan)


def encrypt_pin_block_tdes(key: bytes, clear_block: bytes) -> bytes:
    """TDES-ECB encipherment of a clear 8-byte PIN block (double or triple length key)."""
    key = require_key(key, (16, 24), "TDES PIN key")
    return tdes_encrypt(key, _check_block(clear_block, _BLOCK, "clear PIN block"))


def decrypt_pin_block_tdes(key: bytes, block: bytes) -> bytes:
    """Inverse of :func:`encrypt_pin_block_tdes`; returns the clear 8-byte block."""
    key = require_key(key, (16, 24), "TDES PIN key")
    return tdes_decrypt(key, _check_block(block, _BLOCK, "enciphered PIN block"))


# --- format 4 -------------------------------------------------------------------------


def encode_format4_pin_field(pin: str, *, random_bytes: RandomBytes | None = None) -> bytes:
    """Plaintext PIN field: 4, length, PIN, 0xA fill to 8 bytes, then 8 random bytes."""
    pin = _check_pin(pin)
    head = _pack(_pin_field_nibbles(4, pin, [_FORMAT4_FILL] * (14 - len(pin))))
    return head + _random(random_bytes, 8)


def decode_format4_pin_field(field: bytes) -> str:
    """Recover the PIN from a plaintext format 4 PIN field; checks control, length, 0xA fill."""
    field = _check_block(field, _BLOCK4, "PIN block format 4 PIN field")
    return _decode_pin_nibbles(_nibbles(field[:8]), 4, lambda n: n == _FORMAT4_FILL, "0xA")


def encode_format4_pan_field(pan: str) -> bytes:
    """Plaintext PAN field: length-minus-12 nibble, the whole PAN (left-padded to 12
    digits when shorter), then zero nibbles to 16 bytes."""
    pan = _check_digits(pan, "PAN", range(1, PAN_MAX_LENGTH + 1))
    digits = pan.rjust(12, "0")
    nibbles = [len(digits) - 12, *(int(d) for d in digits)]
    return _pack(nibbles + [0] * (32 - len(nibbles)))


def _aes(key: bytes) -> EcbCipher:
    return AES.new(require_key(key, (16, 24, 32), "AES PIN key"), AES.MODE_ECB)


def encrypt_format4(
    key: bytes, pin: str, pan: str, *, random_bytes: RandomBytes | None = None
) -> bytes:
    """Format 4 block: E(key, E(key, PIN field) XOR PAN field)."""
    cipher = _aes(key)
    pan_field = encode_format4_pan_field(pan)
    pin_field = encode_format4_pin_field(pin, random_bytes=random_bytes)
    return cipher.encrypt(xor(cipher.encrypt(pin_field), pan_field))


def decrypt_format4(key: bytes, block: bytes, pan: str) -> str:
    """Recover the PIN from a format 4 block enciphered under ``key`` for ``pan``."""
    cipher = _aes(key)
    block = _check_block(block, _BLOCK4, "PIN block format 4")
    pan_field = encode_format4_pan_field(pan)
    pin_field = cipher.decrypt(xor(cipher.decrypt(block), pan_field))
    return decode_format4_pin_field(pin_field)
