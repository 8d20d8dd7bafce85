"""``branchline-server`` options reach the server's settings, and a bad value stops the
start with a message naming the option (exit 2) before anything is opened."""

from __future__ import annotations

from typing import Any

import pytest

from branchline.server import main as server_main
from branchline.server.app import DispatchServer, ServerSettings

BASE = ["--insecure-loopback", "--listen", "127.0.0.1:0", "--db", "sqlite:///unused.db"]


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[ServerSettings]:
    """The settings each start would have run with (nothing is started)."""
    runs: list[ServerSettings] = []

    async def run(self: DispatchServer) -> int:
        runs.append(self.settings)
        return 0

    monkeypatch.setattr(DispatchServer, "run", run)
    monkeypatch.setattr(server_main, "setup_logging", lambda *a: None)
    return runs


def test_phone_job_offline_grace_reaches_the_settings(started: list[ServerSettings]) -> None:
    assert server_main.main(BASE) == 0
    assert started[-1].phone_job_offline_grace == 60.0  # the default
    assert server_main.main([*BASE, "--phone-job-offline-grace", "300"]) == 0
    assert started[-1].phone_job_offline_grace == 300.0


@pytest.mark.parametrize("value", ["0", "-5", "86401"])
def test_a_bad_phone_job_offline_grace_is_refused_by_name(
    value: str, started: list[ServerSettings], capsys: Any
) -> None:
    assert server_main.main([*BASE, "--phone-job-offline-grace", value]) == 2
    assert "--phone-job-offline-grace must be more than 0" in capsys.readouterr().err
    assert started == []
