"""One-time codes: RFC 4226 HOTP and RFC 6238 TOTP (T0 = 0, 30-second steps), and the
base32 secrets authenticator apps take. The server checks them (``server/mobile/bank_auth``);
the simulator plays the customer's authenticator app (``hardware-sim/authenticator.py``)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct

STEP_SECONDS = 30
DIGITS = 6


def hotp(key: bytes, counter: int, digits: int = DIGITS, digest: str = "sha1") -> str:
    """RFC 4226 HOTP: HMAC over the 8-byte counter, dynamic truncation, ``digits`` digits."""
    mac = hmac.new(key, struct.pack(">Q", counter), getattr(hashlib, digest)).digest()
    offset = mac[-1] & 0x0F
    code = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(code % 10**digits).zfill(digits)


def totp(key: bytes, unix_time: float, digits: int = DIGITS, digest: str = "sha1") -> str:
    """RFC 6238 TOTP at ``unix_time`` (T0 = 0, 30-second steps)."""
    return hotp(key, int(unix_time) // STEP_SECONDS, digits, digest)


def secret_bytes(secret_b32: str) -> bytes:
    """The key of a base32 secret as apps show it (any case, spaces, padding optional)."""
    text = secret_b32.strip().replace(" ", "").upper()
    return base64.b32decode(text + "=" * (-len(text) % 8))
