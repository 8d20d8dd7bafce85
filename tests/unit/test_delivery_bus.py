"""The delivery bus: pushes and signals between two replicas' buses on one PostgreSQL
schema (LISTEN/NOTIFY, the durable table, the claim), and the in-process bus of SQLite."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from branchline.server.delivery.bus import LocalBus, signal_in_transaction
from branchline.server.delivery.pg import PgBus, channel_name, parse_payload
from branchline.server.delivery.schema import link_deliveries
from branchline.server.storage import open_database
from branchline.v1 import terminal_link_pb2 as pb


class Replica:
    """What a TerminalLink servicer gives its bus: the streams it holds."""

    def __init__(self) -> None:
        self.held: set[str] = set()
        self.got: list[tuple[str, pb.ServerMessage]] = []

    def deliver(self, terminal_id: str, message: pb.ServerMessage) -> bool:
        if terminal_id not in self.held:
            return False
        self.got.append((terminal_id, message))
        return True

    def attach(self, bus: LocalBus) -> None:
        bus.attach(self.deliver, self.held.__contains__, lambda: sorted(self.held))


async def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)


def message(n: int, size: int = 10) -> pb.ServerMessage:
    update = pb.ServerMessage()
    update.tube_update.txn_id = f"TX-{n}"
    update.tube_update.terminal_id = "x" * size
    return update


def test_payloads_and_channel_names() -> None:
    assert parse_payload("p 12 T-0001") == ("p", "12", "T-0001")
    assert parse_payload("s tube r1") == ("s", "tube", "r1")
    for bad in ("", "p", "p x T", "p 12", "q 1 2", "s"):
        assert parse_payload(bad) is None
    name = channel_name("test_" + "a" * 60)
    assert len(name) < 63 and name == name.lower()
    assert channel_name("public") != channel_name("Public")


def test_local_bus_refuses_pushes_and_wakes_waiters() -> None:
    async def main() -> None:
        bus = LocalBus()
        assert bus.send("T-1", message(1)) is False
        waiter = asyncio.create_task(bus.wait("tube", 5))
        await asyncio.sleep(0)
        bus.signal("tube")
        assert await waiter is True
        assert await bus.wait("tube", 0.05) is False

    asyncio.run(main())


def test_a_signal_while_a_watcher_reads_is_not_lost() -> None:
    """A watch loop marks before reading the database; a signal that came meanwhile (nobody
    was waiting) wakes its next wait at once instead of after the poll."""

    async def main() -> None:
        bus = LocalBus()
        seen = bus.mark(("calls", "dispatch"))
        bus.signal("dispatch")  # while the loop was reading
        assert await asyncio.wait_for(bus.wait(("calls", "dispatch"), 30, seen), 1) is True
        seen = bus.mark(("calls", "dispatch"))
        assert await bus.wait(("calls", "dispatch"), 0.05, seen) is False
        assert await bus.wait("tube", 0.05, bus.mark("tube")) is False

    asyncio.run(main())


def test_pushes_and_signals_cross_replicas_on_postgresql(pg_migrated_url: str) -> None:
    engine = open_database(pg_migrated_url)

    async def main() -> None:
        a, b = PgBus(engine, "ra"), PgBus(engine, "rb")
        ra, rb = Replica(), Replica()
        ra.attach(a)
        rb.attach(b)
        tasks = [asyncio.create_task(a.run()), asyncio.create_task(b.run())]
        try:
            await eventually(lambda: a.counts["listens"] == 1 and b.counts["listens"] == 1)
            rb.held.add("T-B")
            # A big message: NOTIFY carries only its row id.
            assert a.send("T-B", message(1, size=20_000))
            assert a.send("T-B", message(2))
            await eventually(lambda: len(rb.got) == 2)
            assert [m.tube_update.txn_id for _, m in rb.got] == ["TX-1", "TX-2"]
            assert len(rb.got[0][1].tube_update.terminal_id) == 20_000
            assert ra.got == []
            # A terminal connected nowhere: the push waits for its registration.
            assert a.send("T-LATE", message(3))
            await eventually(lambda: a.counts["sent"] == 3)
            await asyncio.sleep(0.5)
            assert rb.got[2:] == [] and ra.got == []
            rb.held.add("T-LATE")
            await b.catch_up("T-LATE")
            await eventually(lambda: len(rb.got) == 3)
            assert rb.got[2][1].tube_update.txn_id == "TX-3"
            # A signal from A wakes B's watchers.
            waiter = asyncio.create_task(b.wait("calls", 10))
            await asyncio.sleep(0.1)
            a.signal("calls")
            assert await waiter is True
            # Nothing twice: every row claimed once, by rb.
            await asyncio.sleep(2.5)  # a backstop sweep on both
            assert len(rb.got) == 3
            with engine.connect() as conn:
                by = conn.execute(
                    select(link_deliveries.c.delivered_by, func.count()).group_by(
                        link_deliveries.c.delivered_by
                    )
                ).all()
            assert dict(by) == {"rb": 3}
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    try:
        asyncio.run(main())
    finally:
        engine.dispose()


def test_a_missed_notification_is_swept_up(pg_migrated_url: str) -> None:
    """B is not listening when A sends: B's sweep on (re)listen delivers it."""
    engine = open_database(pg_migrated_url)

    async def main() -> None:
        a, b = PgBus(engine, "ra"), PgBus(engine, "rb")
        rb = Replica()
        rb.attach(b)
        Replica().attach(a)
        runner = asyncio.create_task(a.run())
        try:
            rb.held.add("T-B")
            assert a.send("T-B", message(7))
            await eventually(lambda: a.counts["sent"] == 1)
            listener = asyncio.create_task(b.run())
            await eventually(lambda: len(rb.got) == 1)
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
        finally:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)

    try:
        asyncio.run(main())
    finally:
        engine.dispose()


@pytest.mark.parametrize("payload", ["p 1", "garbage", "p x T"])
def test_malformed_notifications_are_ignored(pg_migrated_url: str, payload: str) -> None:
    engine = open_database(pg_migrated_url)
    try:
        bus = PgBus(engine, "ra")
        replica = Replica()
        replica.attach(bus)
        bus._on_notify(payload)
        assert bus._wanted == {}
    finally:
        engine.dispose()


def test_a_store_signals_at_commit_and_not_on_rollback(pg_migrated_url: str) -> None:
    engine = open_database(pg_migrated_url)

    async def main() -> None:
        bus = PgBus(engine, "ra")
        Replica().attach(bus)
        runner = asyncio.create_task(bus.run())

        def write(commit: bool) -> None:
            with engine.connect() as conn, conn.begin() as txn:
                signal_in_transaction(conn, "dispatch")
                if not commit:
                    txn.rollback()

        try:
            await eventually(lambda: bus.counts["listens"] == 1)
            waiter = asyncio.create_task(bus.wait(("calls", "dispatch"), 3))
            await asyncio.sleep(0.1)
            await asyncio.to_thread(write, False)
            assert await waiter is False
            waiter = asyncio.create_task(bus.wait(("calls", "dispatch"), 10))
            await asyncio.sleep(0.1)
            await asyncio.to_thread(write, True)
            assert await waiter is True
        finally:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
            bus.close()

    try:
        asyncio.run(main())
    finally:
        engine.dispose()


class RecordingBus(LocalBus):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[str] = []

    def send(self, terminal_id: str, message: pb.ServerMessage) -> bool:
        self.sent.append(terminal_id)
        return True


def test_only_push_anywhere_goes_through_the_bus() -> None:
    from branchline.server.auth import Authorizer
    from branchline.server.link import PushRefused, TerminalLinkServicer

    link = TerminalLinkServicer(None, "ra", 5.0, Authorizer(insecure=True))  # type: ignore[arg-type]
    bus = RecordingBus()
    link.attach_bus(bus)
    with pytest.raises(PushRefused):
        link.push("T-ELSEWHERE", message(1))  # a pusher of this replica's own streams
    link.push_anywhere("T-ELSEWHERE", message(2))
    assert bus.sent == ["T-ELSEWHERE"]
    # One process (SQLite): nowhere else to deliver, refused as before.
    single = TerminalLinkServicer(None, "ra", 5.0, Authorizer(insecure=True))  # type: ignore[arg-type]
    single.attach_bus(LocalBus())
    with pytest.raises(PushRefused):
        single.push_anywhere("T-ELSEWHERE", message(3))
