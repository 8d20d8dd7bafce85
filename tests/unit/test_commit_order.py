"""Event-log rows inserted at commit (``storage.commit_order``): tailing readers by id miss
nothing and see nothing twice, while no lock is held across the writing transaction."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, text

from branchline.server import fleet_registry as fr
from branchline.server.applier import Applier
from branchline.server.storage import commit_order, open_database, write_transaction
from branchline.server.storage.engine import batch_transaction

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def event(terminal_id: str, detail: str = "") -> dict[str, Any]:
    return fr._event(terminal_id, "north", None, fr.EVENT_DEVICE_STATUS, detail, T0)


def details(engine: Engine, after: int = 0) -> list[str]:
    return [e.detail for e in fr.events_after(engine, after, limit=10_000)]


@pytest.fixture
def pg_engine(pg_migrated_url: str) -> Iterator[Engine]:
    db = open_database(pg_migrated_url)
    yield db
    db.dispose()


class Tail:
    """A watcher: remembers the last id it read and asks for larger ones."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.cursor = fr.latest_event_id(engine)
        self.seen: list[tuple[int, str]] = []

    def read(self) -> None:
        for found in fr.events_after(self.engine, self.cursor, limit=10_000):
            self.seen.append((found.event_id, found.detail))
            self.cursor = found.event_id


def test_two_writers_committing_out_of_order_neither_wait_nor_lose_an_event(
    pg_engine: Engine,
) -> None:
    """The first transaction appends and stays open; the second appends and commits first.
    With the log's lock taken at the append, the second would wait for the first's commit
    (here: fail on its lock timeout); with the rows inserted at commit it does not wait, and
    the reader, having read the second's event, still gets the first's after it commits."""
    tail = Tail(pg_engine)
    outcome: list[BaseException | None] = []

    def second() -> None:
        try:
            with write_transaction(pg_engine) as conn:
                conn.execute(text("SET LOCAL lock_timeout = '10s'"))
                fr._append_events(conn, [event("fast", "second")])
            outcome.append(None)
        except BaseException as exc:  # reported to the test below
            outcome.append(exc)

    other = threading.Thread(target=second)
    with write_transaction(pg_engine) as first:
        fr._append_events(first, [event("slow", "first")])
        other.start()
        other.join(30)
        assert outcome == [None], "the second writer waited for the first one's commit"
        tail.read()
        assert [detail for _, detail in tail.seen] == ["second"]
    tail.read()
    assert [detail for _, detail in tail.seen] == ["second", "first"]
    ids = [event_id for event_id, _ in tail.seen]
    assert ids == sorted(set(ids))
    assert details(pg_engine) == ["second", "first"]


def test_many_writers_and_a_tailing_reader_see_every_event_once(pg_engine: Engine) -> None:
    """Writers that keep their transactions open for a while after appending, committing in
    any order; a reader tailing all along ends with every event, once, in id order."""
    tail = Tail(pg_engine)
    stop = threading.Event()
    errors: list[BaseException] = []

    def reader() -> None:
        while not stop.is_set():
            tail.read()

    def writer(n: int) -> None:
        rng = random.Random(n)
        try:
            for i in range(15):
                with write_transaction(pg_engine) as conn:
                    fr._append_events(
                        conn, [event(f"w{n}", f"{n}:{i}:a"), event(f"w{n}", f"{n}:{i}:b")]
                    )
                    time.sleep(rng.uniform(0, 0.01))  # other writers commit meanwhile
        except BaseException as exc:
            errors.append(exc)

    reading = threading.Thread(target=reader)
    reading.start()
    writers = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join(60)
    stop.set()
    reading.join(30)
    tail.read()
    assert errors == []
    ids = [event_id for event_id, _ in tail.seen]
    assert ids == sorted(set(ids))
    assert sorted(detail for _, detail in tail.seen) == sorted(details(pg_engine))
    assert len(tail.seen) == 4 * 15 * 2
    # One transaction's rows keep the order they were appended in.
    order = [detail for _, detail in tail.seen]
    for n in range(4):
        for i in range(15):
            assert order.index(f"{n}:{i}:a") + 1 == order.index(f"{n}:{i}:b")


def test_a_unit_rolled_back_to_its_savepoint_writes_no_event(engine: Engine) -> None:
    with batch_transaction(engine):
        with write_transaction(engine) as conn:
            fr._append_events(conn, [event("t1", "kept 1")])
        with pytest.raises(ValueError), write_transaction(engine) as conn:
            fr._append_events(conn, [event("t1", "rolled back")])
            with write_transaction(engine) as inner:
                fr._append_events(inner, [event("t1", "rolled back, inner")])
            raise ValueError("the unit fails")
        with write_transaction(engine) as conn:
            with pytest.raises(ValueError), write_transaction(engine) as inner:
                fr._append_events(inner, [event("t1", "inner rolled back")])
                raise ValueError("an inner step fails")
            fr._append_events(conn, [event("t1", "kept 2")])
    assert details(engine) == ["kept 1", "kept 2"]


def test_the_applier_writes_a_batchs_events_at_its_commit_and_drops_a_failed_units(
    engine: Engine,
) -> None:
    def unit(name: str, fail: bool = False) -> str:
        with write_transaction(engine) as conn:
            fr._append_events(conn, [event("t1", name)])
        if fail:
            raise RuntimeError(name)
        return name

    async def run() -> list[Any]:
        applier = Applier(engine)
        try:
            return list(
                await asyncio.gather(
                    applier.apply(lambda: unit("a")),
                    applier.apply(lambda: unit("b", fail=True)),
                    applier.apply(lambda: unit("c")),
                    return_exceptions=True,
                )
            )
        finally:
            applier.stop()

    results = asyncio.run(run())
    assert results[0] == "a" and results[2] == "c"
    assert isinstance(results[1], RuntimeError)
    assert details(engine) == ["a", "c"]


def test_a_failing_insert_at_commit_undoes_the_whole_transaction(engine: Engine) -> None:
    def refuse(conn: Connection, rows: list[dict[str, Any]]) -> None:
        raise RuntimeError("the log refused its rows")

    broken = commit_order.EventLog("broken", 1, refuse)
    with pytest.raises(RuntimeError, match="refused"), write_transaction(engine) as conn:
        fr._append_events(conn, [event("t1", "lost with the transaction")])
        commit_order.append(conn, broken, [{"x": 1}])
    assert details(engine) == []


def test_rows_are_appended_only_inside_a_write_transaction(engine: Engine) -> None:
    with engine.connect() as conn, pytest.raises(RuntimeError, match="write_transaction"):
        commit_order.append(conn, fr.EVENT_LOG, [event("t1")])


def test_appends_to_one_stream_take_turns_and_other_streams_do_not_wait(
    pg_engine: Engine,
) -> None:
    """call_signals, call_commands and tube_desk_signals are tailed by id per stream (a
    call's teller signals, say): a second writer of the same stream waits for the first
    one's commit; writers of other streams do not."""
    from sqlalchemy.exc import OperationalError

    def append(stream: str) -> str:
        try:
            with write_transaction(pg_engine) as conn:
                conn.execute(text("SET LOCAL lock_timeout = '1s'"))
                commit_order.take_turns(conn, stream)
            return "appended"
        except OperationalError as exc:
            assert getattr(exc.orig, "pgcode", None) == "55P03"  # lock_not_available
            return "waited"

    streams = [
        "call_signals:C-1:teller",
        "call_signals:C-1:terminal",
        "call_signals:C-2:teller",
        "call_commands:C-1",
    ]
    results: dict[str, str] = {}
    with write_transaction(pg_engine) as first:
        commit_order.take_turns(first, streams[0])
        threads = [
            threading.Thread(target=lambda s=s: results.__setitem__(s, append(s))) for s in streams
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert results == {
        "call_signals:C-1:teller": "waited",
        "call_signals:C-1:terminal": "appended",
        "call_signals:C-2:teller": "appended",
        "call_commands:C-1": "appended",
    }
    assert append(streams[0]) == "appended"  # once the first one committed
