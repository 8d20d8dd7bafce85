"""Payment cryptography shared by the PIN-pad driver, the PIN-pad simulator and the HSM.

- :mod:`.pinblock`: ISO 9564-1 PIN block formats 0, 1, 3 and 4.
- :mod:`.tdes_dukpt`: ANSI X9.24-1:2009 TDES DUKPT (device and host side).
- :mod:`.aes_dukpt`: ANSI X9.24-3-2017 AES DUKPT (device and host side).
- :mod:`.kcv`: key check values and DES parity.

Primitives come from pycryptodome; nothing here implements a cipher.
"""

from __future__ import annotations

from . import aes_dukpt, kcv, pinblock, tdes_dukpt
from .aes_dukpt import AesDukptDevice, AesTransaction, KeyType, KeyUsage
from .errors import (
    DukptError,
    DukptExhaustedError,
    KeyCheckError,
    PayCryptoError,
    PinBlockError,
)
from .kcv import (
    aes_kcv,
    check_odd_parity,
    fix_odd_parity,
    has_odd_parity,
    tdes_kcv,
    verify_aes_kcv,
    verify_tdes_kcv,
)
from .pinblock import (
    RandomBytes,
    decode_format0,
    decode_format1,
    decode_format3,
    decode_format4_pin_field,
    decode_pin_block,
    decrypt_format4,
    decrypt_pin_block_tdes,
    encode_format0,
    encode_format1,
    encode_format3,
    encode_format4_pan_field,
    encode_format4_pin_field,
    encode_pin_block,
    encrypt_format4,
    encrypt_pin_block_tdes,
    pin_block_format,
)
from .tdes_dukpt import TdesDukptDevice, TdesKeyUsage, TdesTransaction

__all__ = [
    "AesDukptDevice",
    "AesTransaction",
    "DukptError",
    "DukptExhaustedError",
    "KeyCheckError",
    "KeyType",
    "KeyUsage",
    "PayCryptoError",
    "PinBlockError",
    "RandomBytes",
    "TdesDukptDevice",
    "TdesKeyUsage",
    "TdesTransaction",
    "aes_dukpt",
    "aes_kcv",
    "check_odd_parity",
    "decode_format0",
    "decode_format1",
    "decode_format3",
    "decode_format4_pin_field",
    "decode_pin_block",
    "decrypt_format4",
    "decrypt_pin_block_tdes",
    "encode_format0",
    "encode_format1",
    "encode_format3",
    "encode_format4_pan_field",
    "encode_format4_pin_field",
    "encode_pin_block",
    "encrypt_format4",
    "encrypt_pin_block_tdes",
    "fix_odd_parity",
    "has_odd_parity",
    "kcv",
    "pin_block_format",
    "pinblock",
    "tdes_dukpt",
    "tdes_kcv",
    "verify_aes_kcv",
    "verify_tdes_kcv",
]
