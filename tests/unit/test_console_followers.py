"""A console view's follower that fails is logged and started again, never left dead."""

from __future__ import annotations

import asyncio
import logging

import pytest

from branchline.server.console import session


def test_a_failed_follower_is_logged_and_started_again(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(session, "FOLLOWER_RESTART_SECONDS", 0.01)
    runs: list[int] = []

    async def follower() -> None:
        runs.append(len(runs))
        if len(runs) < 3:
            raise KeyError("call C-1 gone")

    with caplog.at_level(logging.ERROR, logger="branchline.server.console"):
        asyncio.run(asyncio.wait_for(session._supervised("calls", lambda: follower()), 5))
    assert runs == [0, 1, 2]
    failures = [r for r in caplog.records if "console_follower_failed" in r.getMessage()]
    assert len(failures) == 2


def test_cancelling_the_console_stops_its_follower() -> None:
    started = asyncio.Event()

    async def follower() -> None:
        started.set()
        await asyncio.sleep(60)

    async def scenario() -> None:
        task = asyncio.ensure_future(session._supervised("fleet", lambda: follower()))
        await asyncio.wait_for(started.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
