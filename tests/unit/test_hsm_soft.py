"""Every operation of the soft HSM backend, with published DUKPT and PIN-method values."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from google.rpc import code_pb2, error_details_pb2

from branchline.common.errors import (
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from branchline.common.grpc_errors import rpc_status_for
from branchline.common.hsm.errors import (
    HsmError,
    HsmUnavailableError,
    InvalidAccountError,
    InvalidInputError,
    KcvMismatchError,
    KeyExistsError,
    KeyLengthError,
    KeyNotFoundError,
    KeyParityError,
    PinBlockInvalidError,
    UnsupportedFormatError,
    WrongKeyTypeError,
)
from branchline.common.paycrypto import (
    decode_format0,
    decrypt_pin_block_tdes,
    encode_format0,
    encode_format1,
    encrypt_pin_block_tdes,
    tdes_kcv,
)
from branchline.server.hsm import (
    Algorithm,
    Ibm3624Record,
    KeyType,
    PvvRecord,
    SoftHsm,
    open_hsm,
)
from tests.hsm_support import enroll_pin_for_testing
from tests.unit.hsm_fixtures import (
    A4_PAN,
    A4_PIN,
    A4_PIN_BLOCK,
    AES_INITIAL_KEY,
    AES_KSN,
    MASTER,
    MASTER_HEX,
    TDES_IPEK,
    TDES_KSN,
    TPK,
    ZPK,
    aes_block,
    build_keystore,
    tdes_block,
    tpk_block,
)

PSEC_PAN = "1122334455667788"


@pytest.fixture
def hsm(tmp_path: Path) -> SoftHsm:
    return build_keystore(tmp_path / "keystore.json")


def _clear_under_zpk(block: bytes, pan: str) -> str:
    return decode_format0(decrypt_pin_block_tdes(ZPK, block), pan)


# --- translation ---------------------------------------------------------------------


def test_dukpt_tdes_translation_of_the_a4_block(hsm: SoftHsm) -> None:
    out = hsm.translate_pin_dukpt_to_zpk("bdk", TDES_KSN, A4_PIN_BLOCK, A4_PAN, "zpk")
    # [A4] block 1B9C1845EB993A7A holds PIN 1234 for PAN 4012345678909: under the ZPK it
    # must be exactly the format 0 block of that PIN and PAN.
    assert out == encrypt_pin_block_tdes(ZPK, encode_format0(A4_PIN, A4_PAN))
    assert hsm.dukpt_to_zpk("bdk", TDES_KSN, A4_PIN_BLOCK, A4_PAN, "zpk") == (out, 4)


def test_dukpt_aes_translation(hsm: SoftHsm) -> None:
    block = aes_block("987654", A4_PAN)
    out = hsm.translate_pin_dukpt_to_zpk("bdk-aes", AES_KSN, block, A4_PAN, "zpk")
    assert _clear_under_zpk(out, A4_PAN) == "987654"


@pytest.mark.parametrize("out_format", [1, 3])
def test_dukpt_translation_to_other_formats(hsm: SoftHsm, out_format: int) -> None:
    out = hsm.translate_pin_dukpt_to_zpk(
        "bdk", TDES_KSN, A4_PIN_BLOCK, A4_PAN, "zpk", out_format=out_format
    )
    assert decrypt_pin_block_tdes(ZPK, out)[0] >> 4 == out_format


def test_tpk_to_zpk_translation(hsm: SoftHsm) -> None:
    out = hsm.translate_pin_tpk_to_zpk("tpk", tpk_block("4321", A4_PAN), A4_PAN, "zpk")
    assert out == encrypt_pin_block_tdes(ZPK, encode_format0("4321", A4_PAN))
    fmt1 = encrypt_pin_block_tdes(TPK, encode_format1("4321", random_bytes=lambda n: bytes(n)))
    out1 = hsm.translate_pin_tpk_to_zpk("tpk", fmt1, A4_PAN, "zpk", in_format=1)
    assert out1 == out


def test_translation_errors(hsm: SoftHsm) -> None:
    with pytest.raises(KeyNotFoundError, match="no key named 'nope'"):
        hsm.translate_pin_dukpt_to_zpk("nope", TDES_KSN, A4_PIN_BLOCK, A4_PAN, "zpk")
    with pytest.raises(WrongKeyTypeError, match="is a BDK, expected ZPK"):
        hsm.translate_pin_dukpt_to_zpk("bdk", TDES_KSN, A4_PIN_BLOCK, A4_PAN, "bdk")
    with pytest.raises(WrongKeyTypeError, match="expected AES"):
        hsm.translate_pin_dukpt_to_zpk("bdk", AES_KSN, bytes(16), A4_PAN, "zpk")
    with pytest.raises(WrongKeyTypeError, match="expected TDES"):
        hsm.translate_pin_dukpt_to_zpk("bdk-aes", TDES_KSN, A4_PIN_BLOCK, A4_PAN, "zpk")
    with pytest.raises(InvalidInputError, match="KSN must be 10 bytes"):
        hsm.translate_pin_dukpt_to_zpk("bdk", bytes(9), A4_PIN_BLOCK, A4_PAN, "zpk")
    with pytest.raises(InvalidInputError, match="must be 8 bytes"):
        hsm.translate_pin_dukpt_to_zpk("bdk", TDES_KSN, bytes(7), A4_PAN, "zpk")
    with pytest.raises(InvalidAccountError):
        hsm.translate_pin_dukpt_to_zpk("bdk", TDES_KSN, A4_PIN_BLOCK, "40123", "zpk")
    with pytest.raises(UnsupportedFormatError):
        hsm.translate_pin_dukpt_to_zpk("bdk", TDES_KSN, A4_PIN_BLOCK, A4_PAN, "zpk", 4)
    with pytest.raises(PinBlockInvalidError):  # right keys, another PAN: not a valid block
        hsm.translate_pin_dukpt_to_zpk("bdk", TDES_KSN, A4_PIN_BLOCK, "4012345678919", "zpk")
    with pytest.raises(PinBlockInvalidError, match="expected 0x3 for format 3"):
        hsm.translate_pin_tpk_to_zpk("tpk", tpk_block("1234", A4_PAN), A4_PAN, "zpk", 3)
    with pytest.raises(InvalidInputError, match="counter 0"):  # never a transaction
        hsm.translate_pin_dukpt_to_zpk(
            "bdk", bytes.fromhex("FFFF9876543210E00000"), A4_PIN_BLOCK, A4_PAN, "zpk"
        )


def test_errors_never_carry_pan_pin_or_keys(hsm: SoftHsm) -> None:
    pan = "4000001234567899"
    attempts = [
        lambda: hsm.translate_pin_dukpt_to_zpk("bdk", TDES_KSN, A4_PIN_BLOCK, pan, "zpk"),
        lambda: hsm.translate_pin_tpk_to_zpk("tpk", tpk_block("98765", pan), pan, "zpk", 1),
        lambda: hsm.translate_pin_dukpt_to_zpk("bdk", TDES_KSN, A4_PIN_BLOCK, pan + "123", "x"),
    ]
    for attempt in attempts:
        with pytest.raises(HsmError) as info:
            attempt()
        text = str(info.value)
        assert pan not in text and "98765" not in text
        assert A4_PIN_BLOCK.hex() not in text.lower() and ZPK.hex() not in text.lower()


# --- verification and enrolment -----------------------------------------------------------


def test_verify_dukpt_pvv_and_ibm(hsm: SoftHsm) -> None:
    pvv, ibm = enroll_pin_for_testing(hsm, "pvk", A4_PAN, A4_PIN)
    assert hsm.verify_pin_dukpt("bdk", TDES_KSN, A4_PIN_BLOCK, A4_PAN, "pvk", pvv)
    assert hsm.verify_pin_dukpt("bdk", TDES_KSN, A4_PIN_BLOCK, A4_PAN, "pvk", ibm)
    wrong = tdes_block("1235", A4_PAN)
    assert not hsm.verify_pin_dukpt("bdk", TDES_KSN, wrong, A4_PAN, "pvk", pvv)
    assert not hsm.verify_pin_dukpt("bdk", TDES_KSN, wrong, A4_PAN, "pvk", ibm)


def test_verify_aes_dukpt(hsm: SoftHsm) -> None:
    pvv, ibm = enroll_pin_for_testing(hsm, "pvk", A4_PAN, "2468")
    right, wrong = aes_block("2468", A4_PAN), aes_block("2469", A4_PAN)
    assert hsm.verify_pin_dukpt("bdk-aes", AES_KSN, right, A4_PAN, "pvk", pvv)
    assert hsm.verify_pin_dukpt("bdk-aes", AES_KSN, right, A4_PAN, "pvk", ibm)
    assert not hsm.verify_pin_dukpt("bdk-aes", AES_KSN, wrong, A4_PAN, "pvk", pvv)
    assert not hsm.verify_pin_dukpt("bdk-aes", AES_KSN, wrong, A4_PAN, "pvk", ibm)


def test_verify_against_published_pvv_and_offset(hsm: SoftHsm) -> None:
    # [PSEC]: PVK 0123456789ABCDEFFEDCBA9876543210, PAN 1122334455667788, PIN 4524 ->
    # PVV 8523 (PVKI 1) and IBM offset 0000 (table 1234567890123456, PAN as data).
    block = tdes_block("4524", PSEC_PAN)
    assert hsm.verify_pin_dukpt("bdk", TDES_KSN, block, PSEC_PAN, "pvk", PvvRecord(1, "8523"))
    ibm = Ibm3624Record("0000", PSEC_PAN, "1234567890123456")
    assert hsm.verify_pin_dukpt("bdk", TDES_KSN, block, PSEC_PAN, "pvk", ibm)
    assert not hsm.verify_pin_dukpt("bdk", TDES_KSN, block, PSEC_PAN, "pvk", PvvRecord(1, "8524"))


def test_generate_pvv_and_offset_from_pin_blocks(hsm: SoftHsm) -> None:
    block = tpk_block("4524", PSEC_PAN)
    assert hsm.generate_pvv("tpk", block, PSEC_PAN, "pvk", 1) == PvvRecord(1, "8523")  # [PSEC]
    record = hsm.generate_ibm3624_offset(
        "tpk", tpk_block("1234", PSEC_PAN), PSEC_PAN, "pvk", PSEC_PAN, "1234567890123456"
    )
    assert record == Ibm3624Record("7710", PSEC_PAN, "1234567890123456", "F")  # [PSEC]
    # Under a ZPK (a DUKPT block translated first):
    zone = hsm.translate_pin_dukpt_to_zpk(
        "bdk", TDES_KSN, tdes_block("4524", PSEC_PAN), PSEC_PAN, "zpk"
    )
    assert hsm.generate_pvv("zpk", zone, PSEC_PAN, "pvk", 1, pin_key_type=KeyType.ZPK).pvv == "8523"
    with pytest.raises(WrongKeyTypeError):
        hsm.generate_pvv("zpk", zone, PSEC_PAN, "pvk", 1)  # said TPK, is a ZPK


def test_verification_input_errors(hsm: SoftHsm) -> None:
    args = ("bdk", TDES_KSN, A4_PIN_BLOCK, A4_PAN, "pvk")
    with pytest.raises(InvalidInputError, match="PVV"):
        hsm.verify_pin_dukpt(*args, PvvRecord(1, "12a4"))
    with pytest.raises(InvalidInputError, match="PVKI"):
        hsm.verify_pin_dukpt(*args, PvvRecord(11, "1234"))
    with pytest.raises(InvalidInputError, match="offset"):
        hsm.verify_pin_dukpt(*args, Ibm3624Record("12", "1234"))
    with pytest.raises(WrongKeyTypeError):
        hsm.verify_pin_dukpt("bdk", TDES_KSN, A4_PIN_BLOCK, A4_PAN, "zpk", PvvRecord(1, "1234"))
    with pytest.raises(InvalidInputError, match="PvvRecord"):
        hsm.verify_pin_dukpt(*args, "1234")  # type: ignore[arg-type]


# --- key injection, information ---------------------------------------------------------


def test_derive_initial_key(hsm: SoftHsm, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="branchline.server.hsm"):
        key, kcv = hsm.derive_initial_key("bdk", TDES_KSN)
    assert key == TDES_IPEK  # [A4]
    assert kcv == tdes_kcv(TDES_IPEK).hex().upper()
    assert TDES_IPEK.hex() not in caplog.text.lower()
    assert "hsm_initial_key_exported" in caplog.text
    key, kcv = hsm.derive_initial_key("bdk-aes", AES_KSN)
    assert key == AES_INITIAL_KEY  # [X924-3]
    assert len(kcv) == 10


def test_diagnostics_and_list(hsm: SoftHsm) -> None:
    info = hsm.diagnostics()
    assert info["backend"] == "soft" and info["status"] == "ok" and info["keys"] == 5
    assert info["master_kcv"] == MASTER.kcv
    assert len(info["lmk_check_value"]) == 16
    keys = {k.name: k for k in hsm.list_keys()}
    assert sorted(keys) == ["bdk", "bdk-aes", "pvk", "tpk", "zpk"]
    assert keys["zpk"].kcv == tdes_kcv(ZPK).hex().upper()
    assert keys["bdk-aes"].algorithm is Algorithm.AES and keys["bdk"].type is KeyType.BDK
    assert keys["zpk"].created_at is not None
    assert ZPK.hex().upper() not in str(hsm.list_keys())


# --- custodian operations -----------------------------------------------------------------


def test_create_and_import_rules(hsm: SoftHsm) -> None:
    created = hsm.create_key("zpk-2", KeyType.ZPK, Algorithm.TDES)
    assert created.kcv and created.type is KeyType.ZPK
    aes = hsm.create_key("bdk-256", KeyType.BDK, Algorithm.AES, bits=256)
    assert len(aes.kcv) == 10
    with pytest.raises(KeyExistsError):
        hsm.create_key("zpk", KeyType.ZPK, Algorithm.TDES)
    with pytest.raises(InvalidInputError, match="AES is for BDKs only"):
        hsm.create_key("zpk-aes", KeyType.ZPK, Algorithm.AES)
    with pytest.raises(KeyLengthError):
        hsm.create_key("bdk-64", KeyType.BDK, Algorithm.AES, bits=64)
    with pytest.raises(InvalidInputError, match="key name"):
        hsm.create_key("bad name!", KeyType.ZPK, Algorithm.TDES)
    with pytest.raises(InvalidInputError, match="@previous"):
        hsm.create_key("x@previous", KeyType.ZPK, Algorithm.TDES)
    kcv = tdes_kcv(TPK)
    assert hsm.import_key("tpk-2", KeyType.TPK, Algorithm.TDES, TPK, kcv).kcv == kcv.hex().upper()
    with pytest.raises(KcvMismatchError, match="nothing was imported"):
        hsm.import_key("tpk-3", KeyType.TPK, Algorithm.TDES, TPK, b"\x00\x00\x00")
    with pytest.raises(KeyParityError):
        hsm.import_key("tpk-4", KeyType.TPK, Algorithm.TDES, bytes(16))
    with pytest.raises(KeyLengthError, match="single-length"):
        hsm.import_key("tpk-5", KeyType.TPK, Algorithm.TDES, TPK[:8] * 2)
    with pytest.raises(KeyLengthError, match="128"):
        hsm.import_key("pvk-2", KeyType.PVK, Algorithm.TDES, TPK + TPK[:8])
    assert "tpk-3" not in {k.name for k in hsm.list_keys()}


def test_rotate_bdk_keeps_previous_for_old_pin_pads(hsm: SoftHsm) -> None:
    new, previous = hsm.rotate_bdk("bdk")
    assert (
        previous.name == "bdk@previous"
        and previous.kcv
        == tdes_kcv(bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")).hex().upper()
    )
    assert new.kcv != previous.kcv
    # A PIN pad injected from the old BDK still translates through bdk@previous.
    out = hsm.translate_pin_dukpt_to_zpk("bdk@previous", TDES_KSN, A4_PIN_BLOCK, A4_PAN, "zpk")
    assert _clear_under_zpk(out, A4_PAN) == A4_PIN
    with pytest.raises(PinBlockInvalidError):
        hsm.translate_pin_dukpt_to_zpk("bdk", TDES_KSN, A4_PIN_BLOCK, A4_PAN, "zpk")
    newer, older = hsm.rotate_bdk("bdk")
    assert older.kcv == new.kcv  # the oldest one is gone
    with pytest.raises(WrongKeyTypeError):
        hsm.rotate_bdk("zpk")
    aes_new, _ = hsm.rotate_bdk("bdk-aes")
    assert aes_new.algorithm is Algorithm.AES


def test_open_hsm_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ks.json"
    build_keystore(path)
    monkeypatch.setenv("BRANCHLINE_HSM_MASTER_KEY", MASTER_HEX)
    soft = open_hsm(f"soft://{path}")
    assert isinstance(soft, SoftHsm) and len(soft.list_keys()) == 5
    payshield = open_hsm("payshield://127.0.0.1:1500?header_length=6&timeout=2")
    assert payshield.backend == "payshield"
    with pytest.raises(InvalidInputError, match="scheme"):
        open_hsm("ftp://x")
    with pytest.raises(InvalidInputError, match="unknown option"):
        open_hsm("payshield://127.0.0.1:1500?colour=red")
    with pytest.raises(InvalidInputError):
        open_hsm("payshield://127.0.0.1:1500?timeout=soon")


@pytest.mark.parametrize(
    ("error", "kind", "status"),
    [
        (InvalidInputError("ksn: 9 bytes"), InvalidArgument, "INVALID_ARGUMENT"),
        (InvalidAccountError("pan: 11 digits"), InvalidArgument, "INVALID_ARGUMENT"),
        (KeyLengthError("key: 15 bytes"), InvalidArgument, "INVALID_ARGUMENT"),
        (KcvMismatchError("kcv: does not match"), InvalidArgument, "INVALID_ARGUMENT"),
        (KeyNotFoundError("BDK: no key named 'X'", "X"), NotFound, "NOT_FOUND"),
        (KeyExistsError("ZPK: exists"), AlreadyExists, "ALREADY_EXISTS"),
        (WrongKeyTypeError("PVK: is a ZPK"), FailedPrecondition, "FAILED_PRECONDITION"),
        (HsmUnavailableError("payShield: no answer"), Unavailable, "UNAVAILABLE"),
    ],
)
def test_hsm_errors_are_the_one_error_model_keeping_their_codes(
    error: HsmError, kind: type[DomainError], status: str
) -> None:
    assert isinstance(error, kind) and isinstance(error, HsmError)
    assert error.reason == error.code == type(error).code
    converted = rpc_status_for(error)
    assert converted.code == getattr(code_pb2, status)
    info = error_details_pb2.ErrorInfo()
    assert any(d.Unpack(info) for d in converted.details if d.Is(info.DESCRIPTOR))
    assert info.reason == type(error).code
