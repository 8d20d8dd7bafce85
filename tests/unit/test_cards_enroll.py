"""``branchline-server cards enroll`` with a PIN block: the desk PIN pad (simulated by
``branchline.sim.enrol_pin_pad``) sends a DUKPT block, the HSM derives the PVV or the IBM 3624
offset, and the value stored verifies that PIN (and no other) inside the HSM. No clear PIN
reaches the command; a block without its KSN or HSM, or with a value too, is refused."""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path

import pytest

from branchline.common import paycrypto
from branchline.common.hsm.interface import Ibm3624Record, PvvRecord
from branchline.server.hsm import open_hsm
from branchline.server.hsm_cli import main as hsm_main
from branchline.server.ledger import cards
from branchline.server.ledger.hsm_check import IBM3624, VISA_PVV, ibm_validation_data
from branchline.server.ledger.pan_token import PanTokenizer
from branchline.server.main import main as server_main
from branchline.server.storage import open_database
from branchline.sim.enrol_pin_pad import ENROL_KSN, enrolment_block

BDK = "0123456789ABCDEFFEDCBA9876543210"
PAN = "4761739001010010"
PIN = "918273"


def run(main: object, args: list[str], stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(args)  # type: ignore[operator]
    finally:
        sys.stdin = saved
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def bank(tmp_path: Path) -> dict[str, str]:
    keystore = ["--keystore", str(tmp_path / "ks.json"), "--master-key-file", str(tmp_path / "m")]
    assert run(hsm_main, ["new-master-key", "--out", str(tmp_path / "m")])[0] == 0
    for args in (
        ["import-key", "BDK", "--type", "bdk", "--algorithm", "tdes", "--hex", BDK],
        ["create-key", "PVK", "--type", "pvk", "--algorithm", "tdes"],
        ["create-key", "ZPK", "--type", "zpk", "--algorithm", "tdes"],
    ):
        code, _, err = run(hsm_main, [*keystore, *args])
        assert code == 0, err
    code, out, err = run(
        hsm_main, [*keystore, "--json", "derive-initial-key", "--bdk", "BDK", "--ksn", ENROL_KSN]
    )
    assert code == 0, err
    return {
        "hsm": f"soft://{tmp_path / 'ks.json'}?master_key_file={tmp_path / 'm'}",
        "db": f"sqlite:///{tmp_path / 'server.db'}",
        "pan_key": str(tmp_path / "pan.key"),
        "desk_key": json.loads(out)["initial_key"],
    }


def enroll(bank: dict[str, str], *args: str) -> tuple[int, str, str]:
    argv = ["--db", bank["db"], "--pan-token-key", bank["pan_key"], "cards", "enroll"]
    argv += ["--pan", "-", "--customer", "C-1", "--pvk", "PVK", *args]
    return run(server_main, argv, PAN + "\n")


def pin_verifies(bank: dict[str, str], pin: str, record: PvvRecord | Ibm3624Record) -> bool:
    """Verify ``pin`` typed on a terminal's pad against the stored record, inside the HSM."""
    ksn = bytes.fromhex("FFFF9876543210E00001")
    key = paycrypto.tdes_dukpt.derive_working_key(bytes.fromhex(BDK), ksn)
    block = paycrypto.encrypt_pin_block_tdes(key, paycrypto.encode_format0(pin, PAN))
    return open_hsm(bank["hsm"]).verify_pin_dukpt("BDK", ksn, block, PAN, "PVK", record)


@pytest.mark.parametrize("method", [VISA_PVV, IBM3624])
def test_the_hsm_derives_the_value_from_the_desk_pads_pin_block(
    bank: dict[str, str], method: str
) -> None:
    desk = enrolment_block(bank["desk_key"], PIN, PAN)
    code, out, err = enroll(bank, "--method", method, *desk.cli_args(), "--hsm", bank["hsm"])
    assert code == 0, err
    assert "476173******0010" in out and PAN not in out
    card = cards.get_card(
        open_database(bank["db"]), PanTokenizer.from_file(Path(bank["pan_key"])).token(PAN)
    )
    assert card is not None and card.verification_method == method
    record: PvvRecord | Ibm3624Record
    if method == VISA_PVV:
        record = PvvRecord(card.pvki, card.verification_value)
    else:
        record = Ibm3624Record(card.verification_value, ibm_validation_data(PAN))
    assert pin_verifies(bank, PIN, record)
    assert not pin_verifies(bank, "555000", record)


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--pin-block", "00" * 8, "--hsm", "soft:x"], "--pin-block needs --ksn"),
        (["--pin-block", "00" * 8, "--ksn", ENROL_KSN], "--pin-block needs --hsm"),
        (["--pin-block", "zz", "--ksn", ENROL_KSN, "--hsm", "soft:x"], "hex"),
        (["--pin-block", "00" * 8, "--value", "1234"], "give one of them"),
        ([], "--value: the PVV or offset"),
    ],
)
def test_enrolment_without_a_usable_value_is_refused_naming_the_option(
    bank: dict[str, str], extra: list[str], says: str
) -> None:
    code, _, err = enroll(bank, *extra)
    assert code == 2
    assert says in err


def test_there_is_no_clear_pin_option(bank: dict[str, str]) -> None:
    with pytest.raises(SystemExit):
        enroll(bank, "--test-pin", PIN, "--hsm", bank["hsm"])
