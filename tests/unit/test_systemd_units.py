"""The unit files in systemd/ pass ``systemd-analyze verify`` with no warning at all."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNITS = sorted((ROOT / "systemd").glob("*.service"))


def test_the_units_exist() -> None:
    assert [u.name for u in UNITS] == [
        "branchline-agent.service",
        "branchline-mobile.service",
        "branchline-server.service",
        "branchline-sim.service",
    ]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_units_verify_cleanly(tmp_path: Path) -> None:
    # verify insists ExecStart's binary exists: point it at this environment's scripts.
    bin_dir = Path(sys.executable).parent
    for unit in UNITS:
        text = unit.read_text().replace("/opt/branchline/bin/", f"{bin_dir}/")
        (tmp_path / unit.name).write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", *sorted(str(p) for p in tmp_path.iterdir())],
        capture_output=True,
        text=True,
        timeout=60,
    )
    ours = [line for line in (result.stdout + result.stderr).splitlines() if "branchline" in line]
    assert result.returncode == 0, result.stderr
    assert ours == []


def test_agent_unit_is_notify_with_watchdog() -> None:
    text = (ROOT / "systemd" / "branchline-agent.service").read_text()
    for line in ("Type=notify", "Restart=on-failure", "RestartPreventExitStatus=2"):
        assert line in text
    assert any(line.startswith("WatchdogSec=") for line in text.splitlines())
    assert "SupplementaryGroups=dialout" in text
