"""An engine keeps only the newest finished transactions in memory (``KEEP_FINISHED``): a
long-running agent must not hold every customer's transaction until it restarts. An older
one is still answered, read back from the journal. The tube engine over the real server
service (tube_engine_support)."""

from __future__ import annotations

from pathlib import Path

import pytest

from branchline.agent.engine_base import StepEngine
from tests.unit import tube_support
from tests.unit.tube_engine_support import ServiceUplink, terminal, until, withdraw
from tests.unit.tube_support import World

world = tube_support.world


@pytest.mark.asyncio
async def test_only_the_newest_finished_stay_in_memory_the_rest_come_from_the_journal(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(StepEngine, "KEEP_FINISHED", 2)
    tube = terminal(tmp_path, ServiceUplink(world))
    try:
        ended = []
        for n in range(4):  # more than the account holds: each refused, so each finished
            live = await withdraw(tube, world.books.cash, "99999999.00", f"W-BIG-{n}")
            await until(live, lambda x: x.finished)
            ended.append(live)
        # Each begin lets go of the oldest finished beyond two: the first one has gone; the
        # newest (still running at the last begin) and the two before it are the same objects.
        assert list(tube.engine.live) == ["W-BIG-1", "W-BIG-2", "W-BIG-3"]
        assert tube.engine.get("W-BIG-3") is ended[3]
        first = tube.engine.get("W-BIG-0")  # read back from the journal
        assert first is not ended[0]
        assert (first.finished, first.stage, first.code) == (True, ended[0].stage, ended[0].code)
        # Reading one back keeps it and the newest two finished ones.
        assert list(tube.engine.live) == ["W-BIG-2", "W-BIG-3", "W-BIG-0"]
    finally:
        await tube.close()
