"""What the server asks of an HSM, whichever backend (``soft`` or ``payshield``) runs it.

PINs never leave the HSM in clear: translation re-enciphers a PIN block, verification
answers only True or False. Keys are referred to by name; only the key custodian's CLI
(``branchline-hsm``) exports key material, and only a DUKPT initial key for injection.

PAN arguments are the full PAN (12-19 digits): ISO 9564 format 4 needs all of it, formats
0/1/3 and the Visa PVV take their digits from it.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

DEFAULT_DECIMALIZATION_TABLE = "0123456789012345"


class KeyType(StrEnum):
    BDK = "bdk"  # DUKPT base derivation key (TDES or AES)
    ZPK = "zpk"  # zone PIN key: PIN blocks towards the card network / issuer host
    TPK = "tpk"  # terminal PIN key: PIN blocks from a fixed-key PIN pad
    PVK = "pvk"  # PIN verification key (Visa PVV pair or IBM 3624 PIN generation key)


class Algorithm(StrEnum):
    TDES = "tdes"
    AES = "aes"


@dataclass(frozen=True)
class KeyInfo:
    """Everything about a key except its value."""

    name: str
    type: KeyType
    algorithm: Algorithm
    kcv: str  # hex: TDES 6 digits (E(key, 0^8)), AES 10 digits (AES-CMAC(key, 0^16))
    created_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type.value,
            "algorithm": self.algorithm.value,
            "kcv": self.kcv,
            "created_at": self.created_at.isoformat() if self.created_at else None,
        }


@dataclass(frozen=True)
class PvvRecord:
    """What the issuer stores for Visa PVV verification: the key index and the PVV."""

    pvki: int  # 0-9 (Visa: 0-6)
    pvv: str  # 4 digits


@dataclass(frozen=True)
class Ibm3624Record:
    """What the issuer stores for IBM 3624 offset verification.

    ``validation_data`` is 1-16 hex characters (usually account digits), right-padded to
    16 with ``pad``; the offset has as many digits as the PIN.
    """

    offset: str
    validation_data: str
    decimalization_table: str = DEFAULT_DECIMALIZATION_TABLE
    pad: str = "F"


Verification = PvvRecord | Ibm3624Record


class Hsm(abc.ABC):
    """One interface, two backends: :class:`~branchline.common.hsm.soft.SoftHsm` and
    :class:`~branchline.server.hsm.payshield.client.PayShieldHsm` (in the server).

    Methods are synchronous (the server calls them through ``asyncio.to_thread``) and
    raise :class:`~branchline.common.hsm.errors.HsmError` subclasses.
    """

    backend: str

    @abc.abstractmethod
    def translate_pin_dukpt_to_zpk(
        self,
        bdk_name: str,
        ksn: bytes,
        pin_block: bytes,
        pan: str,
        zpk_name: str,
        out_format: int = 0,
    ) -> bytes:
        """Re-encipher a PIN pad's DUKPT PIN block under a zone PIN key (payShield G0).

        A 10-byte KSN means TDES DUKPT (X9.24-1) and an 8-byte ISO format 0 block; a
        12-byte KSN means AES DUKPT (X9.24-3) and a 16-byte ISO format 4 block. The result
        is an 8-byte block of ``out_format`` (0, 1 or 3) under the TDES ZPK.
        """

    @abc.abstractmethod
    def translate_pin_tpk_to_zpk(
        self,
        tpk_name: str,
        pin_block: bytes,
        pan: str,
        zpk_name: str,
        in_format: int = 0,
        out_format: int = 0,
    ) -> bytes:
        """Re-encipher a PIN block from a terminal PIN key to a zone PIN key (payShield CA)."""

    @abc.abstractmethod
    def verify_pin_dukpt(
        self,
        bdk_name: str,
        ksn: bytes,
        pin_block: bytes,
        pan: str,
        pvv_key_name: str,
        verification: Verification,
    ) -> bool:
        """Verify a DUKPT PIN block inside the HSM against a PVV or an IBM 3624 offset
        (payShield GQ / GO). ``pvv_key_name`` names the PVK (for either method). A wrong
        PIN is ``False``; bad input raises."""

    @abc.abstractmethod
    def generate_pvv(
        self,
        pin_key_name: str,
        pin_block: bytes,
        pan: str,
        pvk_name: str,
        pvki: int,
        in_format: int = 0,
        pin_key_type: KeyType = KeyType.TPK,
    ) -> PvvRecord:
        """Enrol a card: the Visa PVV of the PIN in ``pin_block`` (payShield FW).

        ``pin_key_name`` is a TPK (fixed-key PIN pad) or, with ``pin_key_type=ZPK``, the
        zone key a DUKPT PIN block was first translated to.
        """

    @abc.abstractmethod
    def generate_ibm3624_offset(
        self,
        pin_key_name: str,
        pin_block: bytes,
        pan: str,
        pvk_name: str,
        validation_data: str,
        decimalization_table: str = DEFAULT_DECIMALIZATION_TABLE,
        pad: str = "F",
        in_format: int = 0,
        pin_key_type: KeyType = KeyType.TPK,
    ) -> Ibm3624Record:
        """Enrol a card: the IBM 3624 offset of the PIN in ``pin_block`` (payShield BK),
        which is under a TPK or ZPK as for :meth:`generate_pvv`."""

    @abc.abstractmethod
    def derive_initial_key(self, bdk_name: str, ksn: bytes) -> tuple[bytes, str]:
        """The DUKPT initial key (TDES IPEK or AES initial key) of the PIN pad that will
        carry ``ksn``, and its KCV, for key injection. Exports key material."""

    @abc.abstractmethod
    def diagnostics(self) -> dict[str, Any]:
        """Health and identity of the HSM (payShield NC); no key material."""

    @abc.abstractmethod
    def list_keys(self) -> list[KeyInfo]:
        """Every key's name, type, algorithm, KCV and creation time; never a value."""

    def close(self) -> None:
        """Release connections or files; the default has nothing to release."""
