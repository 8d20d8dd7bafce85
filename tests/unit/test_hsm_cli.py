"""``branchline-hsm``: the DUKPT calculator against X9.24 vectors, and the custodian flow.

TDES: ANSI X9.24-1:2009 Annex A.4 (BDK 0123456789ABCDEFFEDCBA9876543210, KSN
FFFF9876543210E00001): IPEK 6AC292FAA1315B4D858AB3A3D7D5933A, transaction key
042666B49184CFA368DE9628D0397BC9, PIN key 042666B49184CF5C68DE9628D0397B36.
AES: ASC X9.24-3-2017 test vectors (BDK FEDCBA9876543210F1F1F1F1F1F1F1F1, KSN
123456789012345600000001): initial key 1273671EA26AC29AFA4D1084127652A1, derivation key
4F21B565BAD9835E112B6465635EAE44, PIN key AF8CB133A78F8DC2D1359F18527593FB (sources as in
tests/unit/test_paycrypto_aes_dukpt.py).
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from branchline.server.hsm_cli import main
from tests.unit.hsm_fixtures import MASTER_HEX, TPK

BIN = Path(sys.executable).parent


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BRANCHLINE_HSM_MASTER_KEY", MASTER_HEX)
    keystore = tmp_path / "ks.json"
    monkeypatch.setenv("BRANCHLINE_HSM_KEYSTORE", str(keystore))
    return keystore


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_dukpt_tdes_matches_x9_24_1() -> None:
    # The installed console script, as a custodian runs it.
    result = subprocess.run(
        [
            str(BIN / "branchline-hsm"),
            "dukpt",
            "--bdk",
            "0123456789ABCDEFFEDCBA9876543210",
            "--ksn",
            "FFFF9876543210E00001",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "initial_key: 6AC292FAA1315B4D858AB3A3D7D5933A",
        "transaction_key: 042666B49184CFA368DE9628D0397BC9",
        "pin_key: 042666B49184CF5C68DE9628D0397B36",
    ]


def test_dukpt_aes_matches_x9_24_3(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "dukpt",
        "--bdk",
        "FEDCBA9876543210F1F1F1F1F1F1F1F1",
        "--ksn",
        "123456789012345600000001",
    )
    assert code == 0
    assert out.splitlines() == [
        "initial_key: 1273671EA26AC29AFA4D1084127652A1",
        "transaction_key: 4F21B565BAD9835E112B6465635EAE44",
        "pin_key: AF8CB133A78F8DC2D1359F18527593FB",
    ]
    code, out, _ = run(
        capsys,
        "dukpt",
        "--json",
        "--bdk",
        "0123456789ABCDEFFEDCBA9876543210",
        "--ksn",
        "FFFF9876543210E00001",
    )
    data = json.loads(out)
    assert data["algorithm"] == "tdes" and data["pin_key"] == "042666B49184CF5C68DE9628D0397B36"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["dukpt", "--bdk", "0123", "--ksn", "FFFF9876543210E00001"], "--bdk must be 32"),
        (
            ["dukpt", "--bdk", "0123456789ABCDEFFEDCBA987654321G", "--ksn", "FFFF9876543210E00001"],
            "hex",
        ),
        (
            ["dukpt", "--bdk", "0123456789ABCDEFFEDCBA9876543210", "--ksn", "FFFF"],
            "--ksn must be 20 or 24",
        ),
        (
            ["dukpt", "--bdk", "0123456789ABCDEFFEDCBA9876543210", "--ksn", "FFFF9876543210E00000"],
            "counter 0",
        ),
    ],
)
def test_dukpt_bad_input_exits_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert message in err and err.count("\n") == 1


def test_custodian_flow(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "create-key", "bdk-1", "--type", "bdk", "--json")
    assert code == 0 and json.loads(out)["type"] == "bdk"
    code, out, _ = run(
        capsys, "create-key", "bdk-aes", "--type", "bdk", "--algorithm", "aes", "--bits", "256"
    )
    assert code == 0 and "algorithm: aes" in out
    tpk_kcv = "2F2F2F"  # wrong on purpose
    code, _, err = run(
        capsys, "import-key", "tpk-1", "--type", "tpk", "--hex", TPK.hex(), "--kcv", tpk_kcv
    )
    assert code == 2 and "does not match KCV" in err and TPK.hex() not in err.lower()
    from branchline.common.paycrypto import tdes_kcv

    code, out, _ = run(
        capsys,
        "import-key",
        "tpk-1",
        "--type",
        "tpk",
        "--hex",
        TPK.hex(),
        "--kcv",
        tdes_kcv(TPK).hex(),
    )
    assert code == 0 and f"kcv: {tdes_kcv(TPK).hex().upper()}" in out

    code, out, _ = run(capsys, "list")
    assert code == 0 and "bdk-1" in out and "tpk-1" in out and TPK.hex().upper() not in out
    code, out, _ = run(capsys, "list", "--json")
    names = [k["name"] for k in json.loads(out)]
    assert names == ["bdk-1", "bdk-aes", "tpk-1"]
    assert all(
        set(k) == {"name", "type", "algorithm", "kcv", "created_at"} for k in json.loads(out)
    )

    code, out, _ = run(
        capsys, "derive-initial-key", "--bdk", "bdk-1", "--ksn", "FFFF9876543210E00001", "--json"
    )
    derived = json.loads(out)
    assert code == 0 and len(derived["initial_key"]) == 32 and len(derived["kcv"]) == 6
    code, out, _ = run(
        capsys, "derive-initial-key", "--bdk", "bdk-aes", "--ksn", "123456789012345600000001"
    )
    assert code == 0 and out.startswith("initial_key: ") and len(out.splitlines()[0]) == 13 + 64

    code, out, _ = run(capsys, "rotate-bdk", "bdk-1", "--json")
    rotated = json.loads(out)
    assert rotated["previous"]["name"] == "bdk-1@previous"
    code, out, _ = run(
        capsys,
        "derive-initial-key",
        "--bdk",
        "bdk-1@previous",
        "--ksn",
        "FFFF9876543210E00001",
        "--json",
    )
    assert json.loads(out)["initial_key"] == derived["initial_key"]


def test_keystore_options_before_or_after_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BRANCHLINE_HSM_MASTER_KEY", raising=False)
    key_file = tmp_path / "master.key"
    code, out, _ = run(capsys, "new-master-key", "--out", str(key_file))
    assert code == 0 and key_file.stat().st_mode & 0o777 == 0o600
    store = tmp_path / "other.json"
    code, _, err = run(
        capsys,
        "--keystore",
        str(store),
        "--master-key-file",
        str(key_file),
        "create-key",
        "z",
        "--type",
        "zpk",
    )
    assert code == 0, err
    code, out, _ = run(capsys, "list", "--keystore", str(store), "--master-key-file", str(key_file))
    assert code == 0 and out.splitlines()[1].startswith("z ")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["list"], "no keystore at"),
        (["create-key", "bad name", "--type", "zpk"], "key name"),
        (["create-key", "z", "--type", "zpk", "--algorithm", "aes"], "AES is for BDKs only"),
        (["import-key", "z", "--type", "zpk", "--hex", "ABC"], "even number of hex digits"),
        (["import-key", "z", "--type", "pvk", "--hex", "00" * 16], "odd parity"),
        (["derive-initial-key", "--bdk", "nope", "--ksn", "FFFF9876543210E00001"], "no keystore"),
        (["rotate-bdk", "nope"], "no keystore"),
    ],
)
def test_bad_input_exits_2(
    env: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert message in err


def test_missing_master_key_and_argparse_errors(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BRANCHLINE_HSM_MASTER_KEY")
    code, _, err = run(capsys, "create-key", "z", "--type", "zpk")
    assert code == 2 and "no master key" in err
    with pytest.raises(SystemExit) as info:
        main(["create-key", "z", "--type", "xyz"])
    assert info.value.code == 2


def test_import_from_stdin(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(TPK.hex() + "\n"))
    code, out, err = run(capsys, "import-key", "t", "--type", "tpk", "--hex", "-")
    assert code == 0, err
    assert TPK.hex().upper() not in out


def test_bad_input_with_json_prints_the_error_as_data(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "import-key", "z", "--type", "zpk", "--hex", "ABC", "--json")
    assert code == 2
    error = json.loads(out)["error"]
    assert error["reason"] == "invalid_input" and "even number of hex digits" in error["message"]
    assert "even number of hex digits" in err and "[invalid_input]" in err
