"""Shared keys and helpers for the HSM tests (imported by the test_hsm_* modules).

Published values used here:

[A4]   ANSI X9.24-1:2009 Annex A.4 (BDK 0123456789ABCDEFFEDCBA9876543210, KSN
       FFFF9876543210E00001, PIN 1234, PAN 4012345678909): IPEK, PIN key and the
       encrypted PIN block 1B9C1845EB993A7A, as transcribed in openemv/dukpt
       (same source as tests/unit/test_paycrypto_tdes_dukpt.py).
[X924-3] ASC X9.24-3-2017 test vectors (BDK FEDCBA9876543210F1F1F1F1F1F1F1F1, initial key
       ID 1234567890123456): initial key, counter-1 derivation key and PIN key, as in
       tests/unit/test_paycrypto_aes_dukpt.py ([OE], [JP]).
[PSEC] knovichikhin/psec tests/test_pin.py: PVK 0123456789ABCDEFFEDCBA9876543210, Visa
       PVVs and IBM 3624 offsets.
"""

from __future__ import annotations

from pathlib import Path

from branchline.common.paycrypto import (
    aes_dukpt,
    encode_format0,
    encrypt_format4,
    encrypt_pin_block_tdes,
    fix_odd_parity,
    tdes_dukpt,
)
from branchline.server.hsm import Algorithm, KeyType, MasterKey, SoftHsm

MASTER_HEX = "5A" * 16 + "A5" * 16
MASTER = MasterKey.from_hex(MASTER_HEX, "test")

TDES_BDK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")  # [A4]
TDES_KSN = bytes.fromhex("FFFF9876543210E00001")  # [A4]
TDES_IPEK = bytes.fromhex("6AC292FAA1315B4D858AB3A3D7D5933A")  # [A4]
TDES_PIN_KEY = bytes.fromhex("042666B49184CF5C68DE9628D0397B36")  # [A4]
A4_PIN, A4_PAN = "1234", "4012345678909"
A4_PIN_BLOCK = bytes.fromhex("1B9C1845EB993A7A")  # [A4] PIN 1234 under the counter-1 key

AES_BDK = bytes.fromhex("FEDCBA9876543210F1F1F1F1F1F1F1F1")  # [X924-3]
AES_KSN = bytes.fromhex("123456789012345600000001")  # [X924-3] counter 1
AES_INITIAL_KEY = bytes.fromhex("1273671EA26AC29AFA4D1084127652A1")  # [X924-3]
AES_DERIVATION_KEY = bytes.fromhex("4F21B565BAD9835E112B6465635EAE44")  # [X924-3]
AES_PIN_KEY = bytes.fromhex("AF8CB133A78F8DC2D1359F18527593FB")  # [X924-3]

PVK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")  # [PSEC]
# Arbitrary zone and terminal keys, parity-adjusted.
ZPK = fix_odd_parity(bytes.fromhex("A1B2C3D4E5F60718293A4B5C6D7E8F90"))
TPK = fix_odd_parity(bytes.fromhex("0F1E2D3C4B5A69788796A5B4C3D2E1F0"))


def build_keystore(path: Path) -> SoftHsm:
    """A soft HSM with bdk (TDES), bdk-aes, zpk, tpk and pvk."""
    hsm = SoftHsm.open(path, MASTER)
    hsm.import_key("bdk", KeyType.BDK, Algorithm.TDES, TDES_BDK)
    hsm.import_key("bdk-aes", KeyType.BDK, Algorithm.AES, AES_BDK)
    hsm.import_key("zpk", KeyType.ZPK, Algorithm.TDES, ZPK)
    hsm.import_key("tpk", KeyType.TPK, Algorithm.TDES, TPK)
    hsm.import_key("pvk", KeyType.PVK, Algorithm.TDES, PVK)
    return hsm


def tdes_block(pin: str, pan: str, ksn: bytes = TDES_KSN) -> bytes:
    """A PIN pad's TDES DUKPT format 0 block for ``pin`` (host-derived key)."""
    key = tdes_dukpt.derive_working_key(TDES_BDK, ksn)
    return encrypt_pin_block_tdes(key, encode_format0(pin, pan))


def aes_block(pin: str, pan: str, ksn: bytes = AES_KSN) -> bytes:
    """A PIN pad's AES DUKPT format 4 block for ``pin`` (fixed random fill)."""
    key = aes_dukpt.derive_working_key(AES_BDK, ksn)
    return encrypt_format4(key, pin, pan, random_bytes=lambda n: bytes(range(n)))


def tpk_block(pin: str, pan: str) -> bytes:
    return encrypt_pin_block_tdes(TPK, encode_format0(pin, pan))
