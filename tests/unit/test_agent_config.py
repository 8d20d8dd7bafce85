"""Strict agent config: every bad config stops startup with exit code 2 naming the place."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from branchline.agent.config import load_config
from branchline.agent.main import main as agent_main
from branchline.common.config_reader import ConfigError

GOOD = """
[terminal]
id = "T-0001"
branch = "BR-001"
server = "127.0.0.1:50051"
state_dir = "state"
insecure = true

[device.printer]
driver = "escpos_printer"
port = "sim/dev/printer"
baudrate = 19200
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


def test_good_config_loads(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    assert config.terminal.terminal_id == "T-0001"
    assert config.terminal.state_dir == tmp_path / "state"
    assert config.terminal.tls is None
    (printer,) = config.devices
    assert printer.name == "printer" and printer.driver_name == "escpos_printer"


@pytest.mark.parametrize(
    ("edit", "where"),
    [
        (
            lambda t: t.replace("baudrate = 19200", "baudrate = 19200\nspeed = 3"),
            "[device.printer] speed: unknown option",
        ),
        (
            lambda t: t.replace("baudrate = 19200", 'baudrate = "fast"'),
            "[device.printer] baudrate: expected an integer",
        ),
        (
            lambda t: t.replace('"escpos_printer"', '"acme_laser"'),
            "[device.printer] driver: unknown driver 'acme_laser'",
        ),
        (lambda t: t + "\n[weather]\nsunny = true\n", "[weather]: unknown section"),
        (
            lambda t: t.replace(
                "insecure = true",
                'ca_file = "missing-ca.pem"\ncert_file = "c.pem"\nkey_file = "k.pem"',
            ),
            "[terminal] ca_file: file",
        ),
        (
            lambda t: t.replace('branch = "BR-001"\n', ""),
            "[terminal] branch: required option is missing",
        ),
        (lambda t: t.replace('id = "T-0001"', "id = 7"), "[terminal] id: expected a string"),
        (
            lambda t: t.replace("[device.printer]", "[device.toaster]"),
            "[device.toaster]: unknown device",
        ),
        (
            lambda t: t.replace('server = "127.0.0.1:50051"', 'server = "10.1.2.3:50051"'),
            "[terminal] insecure: plaintext is allowed only to a loopback server",
        ),
        (lambda t: t.replace("baudrate = 19200", "baudrate = 12"), "[device.printer] baudrate:"),
        (lambda t: t.replace("[terminal]", "[terminal"), "not valid TOML"),
    ],
)
def test_bad_config_names_the_place(tmp_path: Path, edit, where: str) -> None:  # type: ignore[no-untyped-def]
    path = write(tmp_path, edit(GOOD))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert where in str(info.value)


def test_missing_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert agent_main(["--config", str(tmp_path / "nope.toml")]) == 2
    assert "nope.toml" in capsys.readouterr().err


def test_agent_process_exits_2_with_one_message(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("baudrate = 19200", 'baudrate = 19200\nparity = "E"'))
    result = subprocess.run(
        [sys.executable, "-m", "branchline.agent.main", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert f"{path}: [device.printer] parity: unknown option" in lines[0]
