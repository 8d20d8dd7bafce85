"""Field layouts of the payShield host commands Branchline uses, one class per command.

Each request encodes to / decodes from the text after the command code; each response
likewise after the error code. Client and simulator share these classes, so a field
layout is written once.

| command | response | what |
|---|---|---|
| CA | CB | translate a PIN block from a TPK to a ZPK |
| G0 | G1 | translate a PIN block from DUKPT (BDK + KSN) to a ZPK |
| GQ | GR | verify a DUKPT PIN block with the Visa PVV method (mode 0: PIN only) |
| GO | GP | verify a DUKPT PIN block with the IBM 3624 offset method (mode 0) |
| FW | FX | generate a Visa PVV from a PIN block under a TPK (key type 002) or ZPK (001) |
| BK | BL | generate an IBM 3624 offset from a PIN block under a TPK or ZPK |
| NC | ND | diagnostics: LMK check value and firmware number |

Layouts follow the payShield host command reference (CA, G0, GQ, GO, FW, BK, NC), with
these Branchline extensions, all documented in ``server/hsm/README.md``:

- key fields are simulator key references (see :mod:`.wire`);
- AES DUKPT (X9.24-3): KSN descriptor ``808`` announces a 24-hex-digit KSN (4-byte BDK
  ID, 4-byte derivation ID, 32-bit counter); the source PIN block is then 32 hex digits
  of ISO format 4 (format code ``48``) and the account field is a 2-digit length and the
  whole PAN, because format 4 binds all PAN digits;
- IBM 3624 PIN validation data is sent as the 16 hex digits actually enciphered (already
  padded) instead of payShield's 12-character field with ``N`` substitution.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .. import validate
from .wire import FieldError, Fields

# payShield PIN block format codes for the ISO 9564 formats we handle.
FORMAT_CODES = {0: "01", 1: "05", 3: "47", 4: "48"}
CODE_FORMATS = {code: fmt for fmt, code in FORMAT_CODES.items()}
AES_KSN_DESCRIPTOR = "808"
TDES_KSN_DESCRIPTOR = "A05"
KEY_TYPE_ZPK = "001"
KEY_TYPE_TPK = "002"
MAX_PIN_LENGTH = "12"


def format_code(fmt: int) -> str:
    return FORMAT_CODES[fmt]


def decode_format(fields: Fields, what: str, allowed: tuple[int, ...]) -> int:
    code = fields.num(2, what, "23")
    fmt = CODE_FORMATS.get(code)
    if fmt is None or fmt not in allowed:
        names = ", ".join(FORMAT_CODES[f] for f in allowed)
        raise FieldError("23", f"{what} {code} is not supported here (use {names})")
    return fmt


# --- KSN, PIN block and account fields ----------------------------------------------------


def encode_ksn(ksn: bytes) -> str:
    descriptor = AES_KSN_DESCRIPTOR if len(ksn) == validate.AES_KSN_LENGTH else TDES_KSN_DESCRIPTOR
    return descriptor + ksn.hex().upper()


def decode_ksn(fields: Fields) -> bytes:
    descriptor = fields.hex(3, "KSN descriptor")
    parts = sum(int(c, 16) for c in descriptor)
    if parts + 5 <= 20:
        # TDES: BDK ID + sub-key + device ID lengths, then the 5-digit counter; a short
        # KSN is left-padded with F to 80 bits (X9.24-1).
        text = fields.hex(parts + 5, "KSN")
        if len(text) < 12:
            raise FieldError("15", "KSN must be 12-20 hex digits")
        return bytes.fromhex(text.rjust(20, "F"))
    if descriptor == AES_KSN_DESCRIPTOR:
        return bytes.fromhex(fields.hex(24, "KSN"))
    raise FieldError(
        "15",
        f"KSN descriptor {descriptor} describes neither a 12-20 digit TDES KSN nor the "
        f"AES form {AES_KSN_DESCRIPTOR}",
    )


def block_length(ksn: bytes) -> int:
    return 16 if len(ksn) == validate.AES_KSN_LENGTH else 8


def encode_account(pan: str, fmt: int) -> str:
    if fmt == 4:
        return f"{len(pan):02d}{pan}"
    return validate.account12(pan)


def decode_account(fields: Fields, fmt: int) -> str:
    """The PAN as the soft backend takes it.

    For format 4 the whole PAN travels. Otherwise only the account field (12 rightmost
    digits without the check digit) does; a placeholder check digit makes it a PAN again,
    and formats 0/1/3 and the Visa PVV never read that digit.
    """
    if fmt == 4:
        length = int(fields.num(2, "PAN length", "22"))
        if not 12 <= length <= 19:
            raise FieldError("22", f"PAN length {length} is outside 12-19")
        return fields.num(length, "PAN", "22")
    return fields.num(12, "account number", "22") + "0"


def _block(fields: Fields, length: int, what: str = "PIN block") -> bytes:
    return bytes.fromhex(fields.hex(length * 2, what))


# --- requests --------------------------------------------------------------------------


@dataclass(frozen=True)
class TranslateTpkToZpk:
    CODE: ClassVar[str] = "CA"
    tpk: str
    zpk: str
    pin_block: bytes
    in_format: int
    out_format: int
    pan: str

    def encode(self) -> str:
        return (
            self.tpk
            + self.zpk
            + MAX_PIN_LENGTH
            + self.pin_block.hex().upper()
            + format_code(self.in_format)
            + format_code(self.out_format)
            + validate.account12(self.pan)
        )

    @classmethod
    def decode(cls, fields: Fields) -> TranslateTpkToZpk:
        tpk = fields.key("source TPK")
        zpk = fields.key("destination ZPK")
        fields.num(2, "maximum PIN length")
        block = _block(fields, 8, "source PIN block")
        in_format = decode_format(fields, "source PIN block format", (0, 1, 3))
        out_format = decode_format(fields, "destination PIN block format", (0, 1, 3))
        pan = decode_account(fields, 0)
        fields.end()
        return cls(tpk, zpk, block, in_format, out_format, pan)


@dataclass(frozen=True)
class TranslateDukptToZpk:
    CODE: ClassVar[str] = "G0"
    bdk: str
    zpk: str
    ksn: bytes
    pin_block: bytes
    out_format: int
    pan: str

    @property
    def in_format(self) -> int:
        return 4 if len(self.ksn) == validate.AES_KSN_LENGTH else 0

    def encode(self) -> str:
        return (
            self.bdk
            + self.zpk
            + encode_ksn(self.ksn)
            + self.pin_block.hex().upper()
            + format_code(self.in_format)
            + format_code(self.out_format)
            + encode_account(self.pan, self.in_format)
        )

    @classmethod
    def decode(cls, fields: Fields) -> TranslateDukptToZpk:
        bdk = fields.key("BDK")
        zpk = fields.key("destination ZPK")
        ksn = decode_ksn(fields)
        block = _block(fields, block_length(ksn), "source PIN block")
        expected = 4 if len(ksn) == validate.AES_KSN_LENGTH else 0
        in_format = decode_format(fields, "source PIN block format", (expected,))
        out_format = decode_format(fields, "destination PIN block format", (0, 1, 3))
        pan = decode_account(fields, in_format)
        fields.end()
        return cls(bdk, zpk, ksn, block, out_format, pan)


@dataclass(frozen=True)
class VerifyPvvDukpt:
    CODE: ClassVar[str] = "GQ"
    bdk: str
    pvk: str
    ksn: bytes
    pin_block: bytes
    pan: str
    pvki: int
    pvv: str

    def encode(self) -> str:
        fmt = 4 if len(self.ksn) == validate.AES_KSN_LENGTH else 0
        return (
            "0"  # mode: PIN verification only
            + self.bdk
            + self.pvk
            + encode_ksn(self.ksn)
            + self.pin_block.hex().upper()
            + format_code(fmt)
            + encode_account(self.pan, fmt)
            + str(self.pvki)
            + self.pvv
        )

    @classmethod
    def decode(cls, fields: Fields) -> VerifyPvvDukpt:
        if fields.num(1, "mode") != "0":
            raise FieldError("15", "mode must be 0 (PIN verification only)")
        bdk = fields.key("BDK")
        pvk = fields.key("PVK")
        ksn = decode_ksn(fields)
        block = _block(fields, block_length(ksn), "source PIN block")
        fmt = decode_format(fields, "PIN block format", (4,) if len(block) == 16 else (0,))
        pan = decode_account(fields, fmt)
        pvki = int(fields.num(1, "PVKI"))
        pvv = fields.num(4, "PVV")
        fields.end()
        return cls(bdk, pvk, ksn, block, pan, pvki, pvv)


def _encode_offset(offset: str) -> str:
    return offset.ljust(12, "F")


def _decode_offset(fields: Fields, length: int) -> str:
    text = fields.hex(12, "offset")
    offset, fill = text[:length], text[length:]
    if not offset.isdigit() or set(fill) - {"F"}:
        raise FieldError("15", f"offset must be {length} digits left-justified, F-padded")
    return offset


def _check_length(fields: Fields) -> int:
    length = int(fields.num(2, "check length"))
    if not 4 <= length <= 12:
        raise FieldError("15", f"check length {length} is outside 04-12")
    return length


@dataclass(frozen=True)
class VerifyIbmDukpt:
    CODE: ClassVar[str] = "GO"
    bdk: str
    pvk: str
    ksn: bytes
    pin_block: bytes
    pan: str
    decimalization_table: str
    validation_data: str  # 16 hex digits, already padded
    offset: str

    def encode(self) -> str:
        fmt = 4 if len(self.ksn) == validate.AES_KSN_LENGTH else 0
        return (
            "0"
            + self.bdk
            + self.pvk
            + encode_ksn(self.ksn)
            + self.pin_block.hex().upper()
            + format_code(fmt)
            + f"{len(self.offset):02d}"
            + encode_account(self.pan, fmt)
            + self.decimalization_table
            + self.validation_data
            + _encode_offset(self.offset)
        )

    @classmethod
    def decode(cls, fields: Fields) -> VerifyIbmDukpt:
        if fields.num(1, "mode") != "0":
            raise FieldError("15", "mode must be 0 (PIN verification only)")
        bdk = fields.key("BDK")
        pvk = fields.key("PVK")
        ksn = decode_ksn(fields)
        block = _block(fields, block_length(ksn), "source PIN block")
        fmt = decode_format(fields, "PIN block format", (4,) if len(block) == 16 else (0,))
        check = _check_length(fields)
        pan = decode_account(fields, fmt)
        table = fields.num(16, "decimalisation table", "25")
        data = fields.hex(16, "PIN validation data")
        offset = _decode_offset(fields, check)
        fields.end()
        return cls(bdk, pvk, ksn, block, pan, table, data, offset)


def _pin_key_type(fields: Fields) -> str:
    code = fields.num(3, "key type")
    if code not in (KEY_TYPE_ZPK, KEY_TYPE_TPK):
        raise FieldError(
            "04", f"key type {code} must be {KEY_TYPE_TPK} (TPK) or {KEY_TYPE_ZPK} (ZPK)"
        )
    return code


@dataclass(frozen=True)
class GeneratePvv:
    CODE: ClassVar[str] = "FW"
    key_type: str
    pin_key: str
    pvk: str
    pin_block: bytes
    in_format: int
    pan: str
    pvki: int

    def encode(self) -> str:
        return (
            self.key_type
            + self.pin_key
            + self.pvk
            + self.pin_block.hex().upper()
            + format_code(self.in_format)
            + validate.account12(self.pan)
            + str(self.pvki)
        )

    @classmethod
    def decode(cls, fields: Fields) -> GeneratePvv:
        key_type = _pin_key_type(fields)
        pin_key = fields.key("PIN key")
        pvk = fields.key("PVK")
        block = _block(fields, 8)
        fmt = decode_format(fields, "PIN block format", (0, 1, 3))
        pan = decode_account(fields, fmt)
        pvki = int(fields.num(1, "PVKI"))
        fields.end()
        return cls(key_type, pin_key, pvk, block, fmt, pan, pvki)


@dataclass(frozen=True)
class GenerateIbmOffset:
    CODE: ClassVar[str] = "BK"
    key_type: str
    pin_key: str
    pvk: str
    pin_block: bytes
    in_format: int
    check_length: int
    pan: str
    decimalization_table: str
    validation_data: str

    def encode(self) -> str:
        return (
            self.key_type
            + self.pin_key
            + self.pvk
            + self.pin_block.hex().upper()
            + format_code(self.in_format)
            + f"{self.check_length:02d}"
            + validate.account12(self.pan)
            + self.decimalization_table
            + self.validation_data
        )

    @classmethod
    def decode(cls, fields: Fields) -> GenerateIbmOffset:
        key_type = _pin_key_type(fields)
        pin_key = fields.key("PIN key")
        pvk = fields.key("PVK")
        block = _block(fields, 8)
        fmt = decode_format(fields, "PIN block format", (0, 1, 3))
        check = _check_length(fields)
        pan = decode_account(fields, fmt)
        table = fields.num(16, "decimalisation table", "25")
        data = fields.hex(16, "PIN validation data")
        fields.end()
        return cls(key_type, pin_key, pvk, block, fmt, check, pan, table, data)


@dataclass(frozen=True)
class Diagnostics:
    CODE: ClassVar[str] = "NC"

    def encode(self) -> str:
        return ""

    @classmethod
    def decode(cls, fields: Fields) -> Diagnostics:
        fields.end()
        return cls()


# --- responses (the fields after the error code) -------------------------------------


@dataclass(frozen=True)
class TranslatedPin:
    """CB / G1: PIN length, destination PIN block, destination format code."""

    pin_length: int
    pin_block: bytes
    out_format: int

    def encode(self) -> str:
        return f"{self.pin_length:02d}{self.pin_block.hex().upper()}{format_code(self.out_format)}"

    @classmethod
    def decode(cls, fields: Fields) -> TranslatedPin:
        length = int(fields.num(2, "PIN length"))
        block = _block(fields, 8, "destination PIN block")
        fmt = decode_format(fields, "destination PIN block format", (0, 1, 3))
        fields.end()
        return cls(length, block, fmt)


@dataclass(frozen=True)
class PvvResult:
    """FX: the 4-digit PVV."""

    pvv: str

    def encode(self) -> str:
        return self.pvv

    @classmethod
    def decode(cls, fields: Fields) -> PvvResult:
        pvv = fields.num(4, "PVV")
        fields.end()
        return cls(pvv)


@dataclass(frozen=True)
class OffsetResult:
    """BL: the offset, left-justified in 12 characters and F-padded."""

    offset: str

    def encode(self) -> str:
        return _encode_offset(self.offset)

    @classmethod
    def decode(cls, fields: Fields) -> OffsetResult:
        text = fields.hex(12, "offset")
        fields.end()
        offset = text.rstrip("F")
        if not offset.isdigit() or not 4 <= len(offset) <= 12:
            raise FieldError("15", "offset must be 4-12 digits left-justified, F-padded")
        return cls(offset)


@dataclass(frozen=True)
class DiagnosticsResult:
    """ND: LMK check value (16 hex) and firmware number (9 characters)."""

    lmk_check_value: str
    firmware: str

    def encode(self) -> str:
        return self.lmk_check_value + self.firmware.ljust(9)[:9]

    @classmethod
    def decode(cls, fields: Fields) -> DiagnosticsResult:
        kcv = fields.hex(16, "LMK check value")
        firmware = fields.take(9, "firmware number")
        fields.end()
        return cls(kcv, firmware.strip())


Request = (
    TranslateTpkToZpk
    | TranslateDukptToZpk
    | VerifyPvvDukpt
    | VerifyIbmDukpt
    | GeneratePvv
    | GenerateIbmOffset
    | Diagnostics
)
REQUESTS: dict[str, type[Request]] = {
    cls.CODE: cls
    for cls in (
        TranslateTpkToZpk,
        TranslateDukptToZpk,
        VerifyPvvDukpt,
        VerifyIbmDukpt,
        GeneratePvv,
        GenerateIbmOffset,
        Diagnostics,
    )
}
