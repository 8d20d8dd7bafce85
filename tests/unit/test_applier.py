"""The group-commit applier (``server/applier.py``) on a real SQLite database.

Units from many "terminals" share batches (one commit), each terminal's units are applied
in the order handed in, a failing unit is rolled back alone, answers (and after-commit
hooks) come only once the batch is durable, a failed commit fails every unit of its batch,
and a full queue is refused at once with a retryable ``server_busy``.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, select, text

from branchline.common.errors import ResourceExhausted
from branchline.server.applier import BUSY_REASON, Applier, ServerBusy, after_commit
from branchline.server.storage import open_database
from branchline.server.storage.engine import connect, write_transaction
from tests.unit.sqlite_template import migrated_sqlite

pytestmark = pytest.mark.timeout(60)

probe_meta = MetaData()
probe = Table(
    "applier_probe",
    probe_meta,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("terminal", String(20), nullable=False),
    Column("n", Integer, nullable=False),
)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = open_database(migrated_sqlite(tmp_path / "applier.db"))
    probe_meta.create_all(engine)
    yield engine
    engine.dispose()


def _insert(engine: Engine, terminal: str, n: int) -> int:
    """A unit of work as the tube service does it: its own write_transaction."""
    with write_transaction(engine) as conn:
        conn.execute(probe.insert().values(terminal=terminal, n=n))
    with connect(engine) as conn:  # a read in the batch sees the batch's own writes
        return int(
            conn.execute(
                select(probe.c.n)
                .where(probe.c.terminal == terminal)
                .order_by(probe.c.id.desc())
                .limit(1)
            ).scalar_one()
        )


def _committed(engine: Engine) -> list[tuple[str, int]]:
    """What another connection sees: only committed rows."""
    with engine.connect() as conn:
        return [(r.terminal, r.n) for r in conn.execute(select(probe).order_by(probe.c.id))]


def _blocker(started: threading.Event, release: threading.Event) -> None:
    started.set()
    assert release.wait(10)


def test_many_terminals_share_batches_and_keep_their_order(engine: Engine) -> None:
    async def scenario() -> None:
        applier = Applier(engine, max_batch=50)
        started, release = threading.Event(), threading.Event()
        first = asyncio.ensure_future(applier.apply(lambda: _blocker(started, release)))
        assert await asyncio.to_thread(started.wait, 10)
        # While the first batch is held, 5 terminals hand in 20 units each, interleaved.
        futures = [
            asyncio.ensure_future(applier.apply(functools.partial(_insert, engine, f"T{t}", n)))
            for n in range(20)
            for t in range(5)
        ]
        await asyncio.sleep(0.2)
        assert applier.waiting == 100
        release.set()
        results = await asyncio.gather(first, *futures)
        assert results[1:] == [n for n in range(20) for _ in range(5)]
        rows = _committed(engine)
        for t in range(5):
            assert [n for terminal, n in rows if terminal == f"T{t}"] == list(range(20))
        # 101 units in 3 batches (1 + 50 + 50): one commit each, not one per unit.
        assert applier.stats.units == 101
        assert applier.stats.batches == 3
        assert applier.stats.largest_batch == 50
        applier.stop()

    asyncio.run(scenario())


def test_a_failing_unit_is_rolled_back_alone(engine: Engine) -> None:
    def failing() -> None:
        _insert(engine, "BAD", 1)
        raise RuntimeError("this message cannot be applied")

    async def scenario() -> None:
        applier = Applier(engine)
        started, release = threading.Event(), threading.Event()
        held = asyncio.ensure_future(applier.apply(lambda: _blocker(started, release)))
        assert await asyncio.to_thread(started.wait, 10)
        good1 = asyncio.ensure_future(applier.apply(lambda: _insert(engine, "A", 1)))
        bad = asyncio.ensure_future(applier.apply(failing))
        good2 = asyncio.ensure_future(applier.apply(lambda: _insert(engine, "C", 3)))
        await asyncio.sleep(0.1)
        release.set()
        await held
        assert await good1 == 1
        with pytest.raises(RuntimeError, match="cannot be applied"):
            await bad
        assert await good2 == 3
        assert _committed(engine) == [("A", 1), ("C", 3)]
        assert applier.stats.failed_units == 1
        assert applier.stats.batches == 2  # the three shared one batch
        applier.stop()

    asyncio.run(scenario())


def test_answers_and_hooks_come_only_after_the_commit(engine: Engine) -> None:
    hooked: list[str] = []

    def with_hook(name: str) -> int:
        after_commit(engine, lambda: hooked.append(name))
        return _insert(engine, name, 1)

    def failing_with_hook() -> None:
        after_commit(engine, lambda: hooked.append("never"))
        raise RuntimeError("refused")

    async def scenario() -> None:
        applier = Applier(engine)
        started, release = threading.Event(), threading.Event()
        held = asyncio.ensure_future(applier.apply(lambda: _blocker(started, release)))
        assert await asyncio.to_thread(started.wait, 10)
        second_started, second_release = threading.Event(), threading.Event()
        first = asyncio.ensure_future(applier.apply(lambda: with_hook("first")))
        failing = asyncio.ensure_future(applier.apply(failing_with_hook))
        last = asyncio.ensure_future(
            applier.apply(lambda: _blocker(second_started, second_release))
        )
        await asyncio.sleep(0.1)
        release.set()
        await held
        # The batch [first, failing, last] is under way: first is applied but not committed.
        assert await asyncio.to_thread(second_started.wait, 10)
        await asyncio.sleep(0.1)
        assert not first.done()
        assert hooked == []
        assert _committed(engine) == []
        second_release.set()
        assert await first == 1
        await last
        with pytest.raises(RuntimeError):
            await failing
        assert hooked == ["first"]
        assert _committed(engine) == [("first", 1)]
        applier.stop()

    asyncio.run(scenario())


def test_after_commit_outside_a_batch_runs_at_once(engine: Engine) -> None:
    ran: list[int] = []
    after_commit(engine, lambda: ran.append(1))
    assert ran == [1]


def test_a_failed_commit_fails_every_unit_of_its_batch(engine: Engine) -> None:
    # A deferred foreign key is checked at COMMIT: the batch's one commit fails.
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE parent (id INTEGER PRIMARY KEY)"))
        conn.execute(
            text(
                "CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES "
                "parent(id) DEFERRABLE INITIALLY DEFERRED)"
            )
        )

    def orphan() -> None:
        with write_transaction(engine) as conn:
            conn.execute(text("INSERT INTO child (parent_id) VALUES (42)"))

    async def scenario() -> None:
        applier = Applier(engine)
        started, release = threading.Event(), threading.Event()
        held = asyncio.ensure_future(applier.apply(lambda: _blocker(started, release)))
        assert await asyncio.to_thread(started.wait, 10)
        good = asyncio.ensure_future(applier.apply(lambda: _insert(engine, "A", 1)))
        bad = asyncio.ensure_future(applier.apply(orphan))
        await asyncio.sleep(0.1)
        release.set()
        await held
        for future in (good, bad):
            with pytest.raises(Exception, match="FOREIGN KEY"):
                await future
        assert _committed(engine) == []  # nothing of that batch happened
        assert applier.stats.failed_commits == 1
        # The applier goes on: the next batch commits.
        assert await applier.apply(lambda: _insert(engine, "B", 2)) == 2
        assert _committed(engine) == [("B", 2)]
        applier.stop()

    asyncio.run(scenario())


def test_a_full_queue_is_refused_at_once_with_a_retry_after(engine: Engine) -> None:
    async def scenario() -> None:
        applier = Applier(engine, queue_limit=3, retry_after=0.75)
        started, release = threading.Event(), threading.Event()
        held = asyncio.ensure_future(applier.apply(lambda: _blocker(started, release)))
        assert await asyncio.to_thread(started.wait, 10)
        queued = [
            asyncio.ensure_future(applier.apply(functools.partial(_insert, engine, "T", n)))
            for n in range(3)
        ]
        await asyncio.sleep(0.1)
        with pytest.raises(ServerBusy) as refused:
            await applier.apply(lambda: _insert(engine, "T", 99))
        assert isinstance(refused.value, ResourceExhausted)
        assert refused.value.reason == BUSY_REASON
        assert refused.value.retry_after == 0.75
        assert "3 messages waiting" in refused.value.message
        assert applier.stats.refused == 1
        # The server's own housekeeping is never refused.
        housekeeping = asyncio.ensure_future(
            applier.apply(lambda: _insert(engine, "H", 0), priority=True)
        )
        release.set()
        await held
        assert await asyncio.gather(*queued) == [0, 1, 2]
        assert await housekeeping == 0
        assert ("T", 99) not in _committed(engine)
        # Drained: accepted again.
        assert await applier.apply(lambda: _insert(engine, "T", 5)) == 5
        applier.stop()

    asyncio.run(scenario())


def test_bad_limits_are_refused(engine: Engine) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Applier(engine, max_batch=0)
    with pytest.raises(ValueError, match="at least 1"):
        Applier(engine, queue_limit=0)
