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
        "branchline-balancer.service",
        "branchline-kiosk.service",
        "branchline-mobile.service",
        "branchline-server.service",
        "branchline-server@.service",
        "branchline-sim.service",
    ]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_units_verify_cleanly(tmp_path: Path) -> None:
    # verify insists ExecStart's binary exists: point it at this environment's scripts.
    bin_dir = Path(sys.executable).parent
    for unit in UNITS:
        text = unit.read_text().replace("/opt/branchline/bin/", f"{bin_dir}/")
        if not Path("/usr/sbin/nginx").exists():  # the balancer's unit, where nginx is absent
            text = text.replace("/usr/sbin/nginx", "/bin/true")
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


def _exec_start(text: str) -> list[str]:
    """ExecStart's words, continuation lines joined."""
    joined = text.replace("\\\n", " ")
    line = next(line for line in joined.splitlines() if line.startswith("ExecStart="))
    return line.removeprefix("ExecStart=").split()


def test_kiosk_unit_runs_chromium_in_kiosk_mode_after_the_agent() -> None:
    text = (ROOT / "systemd" / "branchline-kiosk.service").read_text()
    lines = text.splitlines()
    words = _exec_start(text)
    assert words[0] == "/usr/bin/chromium"
    for flag in (
        "--kiosk",
        "--noerrdialogs",
        "--disable-session-crashed-bubble",
        "--disable-infobars",
        "--overscroll-history-navigation=0",
        "--disable-pinch",
        "--no-first-run",
        "--disable-features=TranslateUI",
    ):
        assert flag in words, flag
    # Its own profile, never the default one, and the agent's page on loopback.
    data_dirs = [w for w in words if w.startswith("--user-data-dir=")]
    assert len(data_dirs) == 1 and data_dirs[0].startswith("--user-data-dir=/var/lib/branchline/")
    assert words[-1] == "http://127.0.0.1:8780/"
    assert "Restart=always" in lines
    after = next(line for line in lines if line.startswith("After="))
    wants = next(line for line in lines if line.startswith("Wants="))
    assert "branchline-agent.service" in after.split("=", 1)[1].split()
    assert "branchline-agent.service" in wants.split("=", 1)[1].split()


def test_replica_units_listen_on_loopback_behind_the_balancer() -> None:
    replica = _exec_start((ROOT / "systemd" / "branchline-server@.service").read_text())
    assert replica[replica.index("--listen") + 1] == "127.0.0.1:%i"
    assert replica[replica.index("--replica") + 1] == "%H-%i"
    balancer = _exec_start((ROOT / "systemd" / "branchline-balancer.service").read_text())
    assert balancer[:3] == ["/usr/sbin/nginx", "-c", "/etc/branchline/nginx-replicas.conf"]
