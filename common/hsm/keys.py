"""Key material rules: which lengths each key type takes, parity, generation and KCVs.

TDES keys are double length (ZPK/TPK may be triple length) with odd parity, and a double
length key whose halves are equal (single DES in disguise) is refused. AES is for BDKs
only (X9.24-3 AES DUKPT); zone, terminal and verification keys stay TDES here because the
PIN blocks they protect (ISO formats 0/1/3) and the PVV / IBM 3624 methods are TDES ones.
"""

from __future__ import annotations

import secrets

from branchline.common.paycrypto import aes_kcv, fix_odd_parity, has_odd_parity, tdes_kcv

from .errors import InvalidInputError, KeyLengthError, KeyParityError
from .interface import Algorithm, KeyType

_LENGTHS: dict[tuple[KeyType, Algorithm], tuple[int, ...]] = {
    (KeyType.BDK, Algorithm.TDES): (16,),
    (KeyType.BDK, Algorithm.AES): (16, 24, 32),
    (KeyType.ZPK, Algorithm.TDES): (16, 24),
    (KeyType.TPK, Algorithm.TDES): (16, 24),
    (KeyType.PVK, Algorithm.TDES): (16,),
}


def allowed_lengths(key_type: KeyType, algorithm: Algorithm) -> tuple[int, ...]:
    try:
        return _LENGTHS[(key_type, algorithm)]
    except KeyError:
        raise InvalidInputError(
            f"a {key_type.value.upper()} cannot be {algorithm.value.upper()} here "
            "(AES is for BDKs only; ZPK, TPK and PVK are TDES)"
        ) from None


def _degenerate(value: bytes) -> bool:
    # DES ignores the parity bit: equal halves (ignoring it) make TDES collapse to DES.
    return all((a ^ b) & 0xFE == 0 for a, b in zip(value[:8], value[8:16], strict=True))


def check_material(key_type: KeyType, algorithm: Algorithm, value: bytes) -> None:
    """Raise naming the rule the material breaks (never printing the material)."""
    lengths = allowed_lengths(key_type, algorithm)
    if len(value) not in lengths:
        expected = " or ".join(str(n * 8) for n in lengths)
        raise KeyLengthError(
            f"a {algorithm.value.upper()} {key_type.value.upper()} must be {expected} bits, "
            f"got {len(value) * 8}"
        )
    if algorithm is Algorithm.TDES:
        if not has_odd_parity(value):
            raise KeyParityError("TDES key material must have odd parity in every byte")
        if _degenerate(value):
            raise KeyLengthError("TDES key halves are equal: that is a single-length DES key")


def generate_material(key_type: KeyType, algorithm: Algorithm, bits: int | None = None) -> bytes:
    lengths = allowed_lengths(key_type, algorithm)
    length = lengths[0] if bits is None else bits // 8
    if bits is not None and (bits % 8 or length not in lengths):
        expected = ", ".join(str(n * 8) for n in lengths)
        raise KeyLengthError(
            f"a {algorithm.value.upper()} {key_type.value.upper()} can be {expected} bits, "
            f"not {bits}"
        )
    while True:
        value = secrets.token_bytes(length)
        if algorithm is Algorithm.TDES:
            value = fix_odd_parity(value)
            if _degenerate(value):
                continue
        return value


def kcv_of(algorithm: Algorithm, value: bytes) -> str:
    """TDES: 3-byte legacy KCV; AES: 5-byte CMAC KCV (X9.24-1:2017), upper-case hex."""
    if algorithm is Algorithm.AES:
        return aes_kcv(value).hex().upper()
    return tdes_kcv(value).hex().upper()
