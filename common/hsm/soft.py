"""``soft`` backend: the HSM's operations in this process, keys from the sealed keystore.

For development, CI and small installations; the same code answers the payShield
simulator's commands, so both backends give identical results. The clear PIN exists only
inside these methods' frames and is never logged, returned or put in an error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from branchline.common.logs import log_event
from branchline.common.paycrypto import (
    DukptError,
    KeyCheckError,
    PayCryptoError,
    PinBlockError,
    aes_dukpt,
    aes_kcv,
    decode_pin_block,
    decrypt_format4,
    decrypt_pin_block_tdes,
    encode_pin_block,
    encrypt_pin_block_tdes,
    tdes_dukpt,
    verify_aes_kcv,
    verify_tdes_kcv,
)

from . import keys as keyrules
from . import pinverify, validate
from .errors import (
    InvalidInputError,
    KcvMismatchError,
    KeyExistsError,
    KeyNotFoundError,
    PinBlockInvalidError,
    WrongKeyTypeError,
)
from .interface import (
    DEFAULT_DECIMALIZATION_TABLE,
    Algorithm,
    Hsm,
    Ibm3624Record,
    KeyInfo,
    KeyType,
    PvvRecord,
    Verification,
)
from .keystore import KeyStore, MasterKey, StoredKey

log = logging.getLogger("branchline.server.hsm")

T = TypeVar("T")
PREVIOUS_SUFFIX = "@previous"
_PIN_KEY_TYPES = (KeyType.TPK, KeyType.ZPK)


def crypto_errors(action: Callable[[], T]) -> T:
    """Run ``action``, turning paycrypto's input errors into HSM errors (same message)."""
    try:
        return action()
    except PinBlockError as exc:
        raise PinBlockInvalidError(str(exc)) from None
    except (DukptError, KeyCheckError, PayCryptoError) as exc:
        raise InvalidInputError(str(exc)) from None


class SoftHsm(Hsm):
    backend = "soft"

    def __init__(self, keystore: KeyStore) -> None:
        self.keystore = keystore

    @classmethod
    def open(cls, path: Path, master: MasterKey) -> SoftHsm:
        return cls(KeyStore(path, master))

    # --- key lookup --------------------------------------------------------------------

    def _key(
        self, name: str, types: tuple[KeyType, ...], role: str, algorithm: Algorithm | None = None
    ) -> StoredKey:
        validate.key_name(name, f"{role} name")
        record = self.keystore.records().get(name)
        if record is None:
            raise KeyNotFoundError(f"{role}: no key named {name!r} in the keystore", name)
        if record.info.type not in types:
            wanted = " or ".join(t.value.upper() for t in types)
            raise WrongKeyTypeError(
                f"{role}: key {name!r} is a {record.info.type.value.upper()}, expected {wanted}"
            )
        if algorithm is not None and record.info.algorithm is not algorithm:
            raise WrongKeyTypeError(
                f"{role}: key {name!r} is {record.info.algorithm.value.upper()}, "
                f"expected {algorithm.value.upper()}"
            )
        return record

    def _bdk(self, name: str, ksn: bytes) -> bytes:
        algorithm = Algorithm.TDES if len(ksn) == validate.TDES_KSN_LENGTH else Algorithm.AES
        return self._key(name, (KeyType.BDK,), "BDK", algorithm).value

    def _zpk(self, name: str) -> bytes:
        return self._key(name, (KeyType.ZPK,), "destination ZPK", Algorithm.TDES).value

    def _pvk(self, name: str) -> bytes:
        return self._key(name, (KeyType.PVK,), "PVK", Algorithm.TDES).value

    # Order everywhere, as the payShield does it: the shape of every input first, then
    # the keys in the order of the command's fields, then the cryptography. Both
    # backends therefore report the same error for the same bad request.

    @staticmethod
    def _dukpt_inputs(ksn: bytes, pin_block: bytes, pan: str) -> tuple[bytes, bytes, str]:
        ksn = validate.ksn(ksn)
        if len(ksn) == validate.TDES_KSN_LENGTH:
            block = validate.block(pin_block, 8, "TDES DUKPT PIN block")
        else:
            block = validate.block(pin_block, 16, "AES DUKPT PIN block")
        return ksn, block, validate.pan(pan)

    # --- PIN extraction (the clear PIN stays in these frames) -------------------------

    @staticmethod
    def _dukpt_pin(bdk: bytes, ksn: bytes, block: bytes, pan: str) -> str:
        if len(ksn) == validate.AES_KSN_LENGTH:
            return crypto_errors(
                lambda: decrypt_format4(aes_dukpt.derive_working_key(bdk, ksn), block, pan)
            )

        def tdes() -> str:
            clear = decrypt_pin_block_tdes(tdes_dukpt.derive_working_key(bdk, ksn), block)
            if clear[0] >> 4 != 0:
                raise PinBlockError(
                    "TDES DUKPT PIN blocks must be ISO 9564 format 0 "
                    f"(control nibble 0x{clear[0] >> 4:X})"
                )
            return decode_pin_block(clear, pan)

        return crypto_errors(tdes)

    @staticmethod
    def _fixed_key_pin(key: bytes, block: bytes, pan: str, in_format: int) -> str:
        def extract() -> str:
            clear = decrypt_pin_block_tdes(key, block)
            if clear[0] >> 4 != in_format:
                raise PinBlockError(
                    f"PIN block control nibble is 0x{clear[0] >> 4:X}, "
                    f"expected 0x{in_format:X} for format {in_format}"
                )
            return decode_pin_block(clear, pan)

        return crypto_errors(extract)

    def _pin_key(self, name: str, key_type: KeyType) -> bytes:
        if key_type not in _PIN_KEY_TYPES:
            raise InvalidInputError(f"PIN key type must be TPK or ZPK, got {key_type}")
        role = f"PIN key ({key_type.value.upper()})"
        return self._key(name, (key_type,), role, Algorithm.TDES).value

    @staticmethod
    def _encipher(zpk: bytes, pin: str, pan: str, out_format: int) -> bytes:
        return crypto_errors(
            lambda: encrypt_pin_block_tdes(zpk, encode_pin_block(pin, out_format, pan))
        )

    # --- translation ------------------------------------------------------------------

    def translate_pin_dukpt_to_zpk(
        self,
        bdk_name: str,
        ksn: bytes,
        pin_block: bytes,
        pan: str,
        zpk_name: str,
        out_format: int = 0,
    ) -> bytes:
        return self.dukpt_to_zpk(bdk_name, ksn, pin_block, pan, zpk_name, out_format)[0]

    def dukpt_to_zpk(
        self,
        bdk_name: str,
        ksn: bytes,
        pin_block: bytes,
        pan: str,
        zpk_name: str,
        out_format: int = 0,
    ) -> tuple[bytes, int]:
        """G0 with the PIN length the payShield response carries beside the block."""
        ksn, block, pan = self._dukpt_inputs(ksn, pin_block, pan)
        validate.pin_format(out_format, (0, 1, 3), "destination PIN block format")
        bdk = self._bdk(bdk_name, ksn)
        zpk = self._zpk(zpk_name)
        pin = self._dukpt_pin(bdk, ksn, block, pan)
        return self._encipher(zpk, pin, pan, out_format), len(pin)

    def translate_pin_tpk_to_zpk(
        self,
        tpk_name: str,
        pin_block: bytes,
        pan: str,
        zpk_name: str,
        in_format: int = 0,
        out_format: int = 0,
    ) -> bytes:
        return self.tpk_to_zpk(tpk_name, pin_block, pan, zpk_name, in_format, out_format)[0]

    def tpk_to_zpk(
        self,
        tpk_name: str,
        pin_block: bytes,
        pan: str,
        zpk_name: str,
        in_format: int = 0,
        out_format: int = 0,
    ) -> tuple[bytes, int]:
        """CA with the PIN length the payShield response carries beside the block."""
        block, pan = validate.fixed_key_inputs(pin_block, pan, in_format)
        validate.pin_format(out_format, (0, 1, 3), "destination PIN block format")
        tpk = self._key(tpk_name, (KeyType.TPK,), "source TPK", Algorithm.TDES).value
        zpk = self._zpk(zpk_name)
        pin = self._fixed_key_pin(tpk, block, pan, in_format)
        return self._encipher(zpk, pin, pan, out_format), len(pin)

    # --- verification -----------------------------------------------------------------

    @staticmethod
    def _check_verification(verification: Verification) -> None:
        if isinstance(verification, PvvRecord):
            validate.pvki(verification.pvki)
            validate.digits(verification.pvv, "PVV", range(4, 5))
        elif isinstance(verification, Ibm3624Record):
            validate.digits(verification.offset, "IBM 3624 offset", pinverify.PIN_LENGTHS)
            validate.decimalization_table(verification.decimalization_table)
            validate.validation_data(verification.validation_data, verification.pad)
        else:
            raise InvalidInputError(
                "verification must be a PvvRecord or an Ibm3624Record, "
                f"got {type(verification).__name__}"
            )

    def verify_pin_dukpt(
        self,
        bdk_name: str,
        ksn: bytes,
        pin_block: bytes,
        pan: str,
        pvv_key_name: str,
        verification: Verification,
    ) -> bool:
        ksn, block, pan = self._dukpt_inputs(ksn, pin_block, pan)
        self._check_verification(verification)
        bdk = self._bdk(bdk_name, ksn)
        pvk = self._pvk(pvv_key_name)
        pin = self._dukpt_pin(bdk, ksn, block, pan)
        return self.verify_clear_pin(pvk, pan, pin, verification)

    @staticmethod
    def verify_clear_pin(pvk: bytes, pan: str, pin: str, verification: Verification) -> bool:
        if isinstance(verification, PvvRecord):
            return pinverify.visa_pvv_matches(pvk, pan, pin, verification.pvki, verification.pvv)
        return pinverify.ibm3624_matches(
            pvk,
            verification.validation_data,
            verification.decimalization_table,
            pin,
            verification.offset,
            verification.pad,
        )

    # --- enrolment --------------------------------------------------------------------

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
        block, pan = validate.fixed_key_inputs(pin_block, pan, in_format)
        validate.pvki(pvki)
        key = self._pin_key(pin_key_name, pin_key_type)
        pvk = self._pvk(pvk_name)
        pin = self._fixed_key_pin(key, block, pan, in_format)
        return PvvRecord(pvki, pinverify.visa_pvv(pvk, pan, pvki, pin))

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
        block, pan = validate.fixed_key_inputs(pin_block, pan, in_format)
        validate.decimalization_table(decimalization_table)
        validate.validation_data(validation_data, pad)
        key = self._pin_key(pin_key_name, pin_key_type)
        pvk = self._pvk(pvk_name)
        pin = self._fixed_key_pin(key, block, pan, in_format)
        offset = pinverify.ibm3624_offset(pvk, validation_data, decimalization_table, pin, pad)
        return Ibm3624Record(offset, validation_data.upper(), decimalization_table, pad.upper())

    # --- key injection ----------------------------------------------------------------

    def derive_initial_key(self, bdk_name: str, ksn: bytes) -> tuple[bytes, str]:
        ksn = validate.ksn(ksn)
        bdk = self._bdk(bdk_name, ksn)
        if len(ksn) == validate.TDES_KSN_LENGTH:
            key = crypto_errors(lambda: tdes_dukpt.derive_ipek(bdk, ksn))
            kcv = keyrules.kcv_of(Algorithm.TDES, key)
        else:
            ikid = aes_dukpt.ksn_initial_key_id(ksn)
            key = crypto_errors(lambda: aes_dukpt.derive_initial_key(bdk, ikid))
            kcv = keyrules.kcv_of(Algorithm.AES, key)
        # Audit trail: who asked is the caller's to log; here the fact and the key ids.
        log_event(
            log, "hsm_initial_key_exported", bdk_name=bdk_name, ksn=ksn.hex().upper(), kcv=kcv
        )
        return key, kcv

    # --- information ------------------------------------------------------------------

    def diagnostics(self) -> dict[str, Any]:
        records = self.keystore.records()
        return {
            "backend": self.backend,
            "status": "ok",
            "keystore": str(self.keystore.path),
            "master_kcv": self.keystore.master.kcv,
            # payShield NC reports an LMK check value; ours is the master key's, 16 hex.
            "lmk_check_value": aes_kcv(self.keystore.master.value, 8).hex().upper(),
            "keys": len(records),
        }

    def list_keys(self) -> list[KeyInfo]:
        return [r.info for r in sorted(self.keystore.records().values(), key=lambda r: r.info.name)]

    # --- key custodian operations (used by branchline-hsm) ----------------------------

    def _add(self, name: str, key_type: KeyType, algorithm: Algorithm, value: bytes) -> KeyInfo:
        keyrules.check_material(key_type, algorithm, value)
        info = KeyInfo(
            name=name,
            type=key_type,
            algorithm=algorithm,
            kcv=keyrules.kcv_of(algorithm, value),
            created_at=datetime.now(UTC).replace(microsecond=0),
        )

        def add(records: dict[str, StoredKey]) -> None:
            if name in records:
                raise KeyExistsError(f"a key named {name!r} already exists")
            records[name] = StoredKey(info, value)

        self.keystore.update(add)
        log_event(log, "hsm_key_added", name=name, type=key_type.value, kcv=info.kcv)
        return info

    def create_key(
        self, name: str, key_type: KeyType, algorithm: Algorithm, bits: int | None = None
    ) -> KeyInfo:
        validate.key_name(name)
        if name.endswith(PREVIOUS_SUFFIX):
            raise InvalidInputError(f"names ending in {PREVIOUS_SUFFIX} are kept for rotation")
        return self._add(
            name, key_type, algorithm, keyrules.generate_material(key_type, algorithm, bits)
        )

    def import_key(
        self,
        name: str,
        key_type: KeyType,
        algorithm: Algorithm,
        value: bytes,
        kcv: bytes | None = None,
    ) -> KeyInfo:
        validate.key_name(name)
        if name.endswith(PREVIOUS_SUFFIX):
            raise InvalidInputError(f"names ending in {PREVIOUS_SUFFIX} are kept for rotation")
        keyrules.check_material(key_type, algorithm, value)
        if kcv is not None:
            check = verify_aes_kcv if algorithm is Algorithm.AES else verify_tdes_kcv
            longest = 16 if algorithm is Algorithm.AES else 8
            if not 2 <= len(kcv) <= longest:
                raise InvalidInputError(f"KCV must be 4 to {longest * 2} hex digits")
            try:
                check(value, kcv)
            except KeyCheckError:
                raise KcvMismatchError(
                    f"the key material does not match KCV {kcv.hex().upper()}; nothing was imported"
                ) from None
        return self._add(name, key_type, algorithm, value)

    def rotate_bdk(self, name: str, bits: int | None = None) -> tuple[KeyInfo, KeyInfo]:
        """New BDK under ``name``; the old one becomes ``name@previous`` (replacing any
        older ``@previous``) so PIN pads not yet re-injected keep working."""
        old = self._key(name, (KeyType.BDK,), "BDK")
        algorithm = old.info.algorithm
        value = keyrules.generate_material(
            KeyType.BDK, algorithm, bits if bits is not None else len(old.value) * 8
        )
        new_info = KeyInfo(
            name=name,
            type=KeyType.BDK,
            algorithm=algorithm,
            kcv=keyrules.kcv_of(algorithm, value),
            created_at=datetime.now(UTC).replace(microsecond=0),
        )
        previous_name = name + PREVIOUS_SUFFIX
        holder: list[KeyInfo] = []

        def rotate(records: dict[str, StoredKey]) -> None:
            current = records.get(name)
            if current is None or current.info.type is not KeyType.BDK:
                raise KeyNotFoundError(f"BDK: no key named {name!r} in the keystore")
            previous = StoredKey(
                KeyInfo(
                    previous_name,
                    KeyType.BDK,
                    current.info.algorithm,
                    current.info.kcv,
                    current.info.created_at,
                ),
                current.value,
            )
            records[previous_name] = previous
            records[name] = StoredKey(new_info, value)
            holder.append(previous.info)

        self.keystore.update(rotate)
        log_event(log, "hsm_bdk_rotated", name=name, kcv=new_info.kcv, previous_kcv=holder[0].kcv)
        return new_info, holder[0]
