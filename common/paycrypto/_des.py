"""Single-block DES/TDES ECB helpers on top of pycryptodome.

pycryptodome's ``DES3`` refuses keys whose halves collapse to single DES. Such keys are
legal in DUKPT and KCV work (just weak), so they are routed to the equivalent ``DES``.
"""

from __future__ import annotations

from typing import Protocol

from Crypto.Cipher import DES, DES3

from ._keys import require_key


class EcbCipher(Protocol):
    def encrypt(self, data: bytes) -> bytes: ...

    def decrypt(self, data: bytes) -> bytes: ...


_TDES_LENGTHS = (8, 16, 24)


def _same_des_key(a: bytes, b: bytes) -> bool:
    # DES ignores the low (parity) bit of every key byte.
    return all((x ^ y) & 0xFE == 0 for x, y in zip(a, b, strict=True))


def _cipher(key: bytes, what: str) -> EcbCipher:
    key = require_key(key, _TDES_LENGTHS, what)
    if len(key) == 8:
        return DES.new(key, DES.MODE_ECB)
    k1, k2 = key[:8], key[8:16]
    k3 = key[16:24] if len(key) == 24 else k1
    # EDE with K1 == K2 is E(K3); with K2 == K3 it is E(K1).
    if _same_des_key(k1, k2):
        return DES.new(k3, DES.MODE_ECB)
    if _same_des_key(k2, k3):
        return DES.new(k1, DES.MODE_ECB)
    return DES3.new(key, DES3.MODE_ECB)


def tdes_encrypt(key: bytes, data: bytes, what: str = "TDES key") -> bytes:
    """ECB-encrypt ``data`` (a multiple of 8 bytes) under a 8/16/24-byte DES/TDES key."""
    return bytes(_cipher(key, what).encrypt(data))


def tdes_decrypt(key: bytes, data: bytes, what: str = "TDES key") -> bytes:
    """ECB-decrypt ``data`` (a multiple of 8 bytes) under a 8/16/24-byte DES/TDES key."""
    return bytes(_cipher(key, what).decrypt(data))
