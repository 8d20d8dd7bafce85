"""Liveness under load: a terminal whose message waits behind a saturated applier is alive.

A real TerminalLink stream on a loopback grpc.aio server; the terminal's message is held in
the applier (a unit that does not finish) for longer than the heartbeat timeout while the
heartbeat sweep runs. The terminal must stay online, its last_seen_at must be written by the
liveness flush, a silent terminal must still go offline, and heartbeats must be answered
without the database (at once, while the applier is held). Also: a server_busy refusal on
the stream says how long to wait.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest

from branchline.server import fleet_registry as registry
from branchline.server.applier import Applier
from branchline.server.auth import Authorizer
from branchline.server.link import TerminalLinkServicer, sweep_stale
from branchline.server.liveness import Liveness
from branchline.server.storage import open_database
from branchline.v1 import common_pb2
from branchline.v1 import terminal_link_pb2 as pb
from branchline.v1 import terminal_link_pb2_grpc as pb_grpc
from tests.unit.sqlite_template import migrated_sqlite

pytestmark = pytest.mark.timeout(60)
TIMEOUT = 1.0


class Stream:
    def __init__(self, stub: pb_grpc.TerminalLinkStub) -> None:
        self._out: asyncio.Queue[pb.TerminalMessage | None] = asyncio.Queue()
        self.call = stub.Connect(self._requests())
        self.seq = 0

    async def _requests(self) -> AsyncIterator[pb.TerminalMessage]:
        while (message := await self._out.get()) is not None:
            yield message

    async def send(self, **body: Any) -> int:
        self.seq += 1
        await self._out.put(pb.TerminalMessage(seq=self.seq, **body))
        return self.seq

    async def read(self, timeout: float = 10) -> pb.ServerMessage:
        message = await asyncio.wait_for(self.call.read(), timeout)
        assert isinstance(message, pb.ServerMessage), "the stream ended"
        return message

    async def close(self) -> None:
        await self._out.put(None)


def _register(terminal_id: str) -> pb.Register:
    return pb.Register(
        terminal_id=terminal_id,
        branch="B1",
        kind=common_pb2.TERMINAL_KIND_SELF_SERVICE,
        service_state=common_pb2.SERVICE_STATE_IN_SERVICE,
    )


def test_a_terminal_waiting_on_the_applier_stays_online(tmp_path: Path) -> None:
    engine = open_database(migrated_sqlite(tmp_path / "fleet.db"))
    # Batches of 2: the queue below takes many batches, with housekeeping between them.
    applier = Applier(engine, max_batch=2)
    servicer = TerminalLinkServicer(engine, "r1", 0.25, Authorizer(insecure=True), applier)
    release = threading.Event()

    def slow() -> None:  # other terminals' work: 0.1 s each
        release.wait(0.1)

    async def handler(terminal_id: str, message: pb.TerminalMessage) -> pb.ServerMessage:
        await servicer.applier.apply(lambda: None)
        return pb.ServerMessage(ack_seq=message.seq, status_ack=pb.StatusAck())

    servicer.add_handler("tube_query", handler)

    async def scenario() -> None:
        server = grpc.aio.server()
        pb_grpc.add_TerminalLinkServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        long_ago = datetime.now(UTC) - timedelta(minutes=5)
        registry.register_terminal(engine, "T-SILENT", "B1", "self_service", "", [], "r1", long_ago)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        stream = Stream(pb_grpc.TerminalLinkStub(channel))
        await stream.send(register=_register("T-BUSY"))
        assert (await stream.read()).HasField("register_ack")
        sweeper = asyncio.create_task(sweep_stale(servicer, TIMEOUT))
        before = registry.get_terminal(engine, "T-BUSY")
        assert before is not None
        # A saturated queue: its message waits behind 3 timeouts' worth of others' work.
        others = [asyncio.ensure_future(applier.apply(slow)) for _ in range(30)]
        seq = await stream.send(tube_query=pb.TerminalMessage().tube_query)
        await asyncio.sleep(2.5 * TIMEOUT)
        busy = registry.get_terminal(engine, "T-BUSY")
        silent = registry.get_terminal(engine, "T-SILENT")
        assert busy is not None and silent is not None
        assert silent.online is False  # the sweep ran, and marks the silent one offline
        assert busy.online is True
        assert busy.last_seen_at > before.last_seen_at  # flushed from memory
        timeouts = [
            e.terminal_id for e in registry.events_after(engine, 0) if e.kind == "heartbeat_timeout"
        ]
        assert timeouts == ["T-SILENT"]
        assert not others[-1].done()  # still saturated
        reply = await stream.read()
        assert reply.ack_seq == seq and reply.HasField("status_ack")
        await asyncio.gather(*others)
        sweeper.cancel()
        await asyncio.gather(sweeper, return_exceptions=True)
        await stream.close()
        await channel.close(None)
        await server.stop(0)
        servicer.applier.stop()

    try:
        asyncio.run(scenario())
    finally:
        release.set()
        engine.dispose()


def test_heartbeats_are_answered_without_waiting_for_the_database(tmp_path: Path) -> None:
    engine = open_database(migrated_sqlite(tmp_path / "fleet.db"))
    applier = Applier(engine, queue_limit=1)
    servicer = TerminalLinkServicer(engine, "r1", 5.0, Authorizer(insecure=True), applier)
    started, release = threading.Event(), threading.Event()

    async def handler(terminal_id: str, message: pb.TerminalMessage) -> pb.ServerMessage:
        await servicer.applier.apply(lambda: None)
        return pb.ServerMessage(ack_seq=message.seq, status_ack=pb.StatusAck())

    servicer.add_handler("tube_query", handler)

    def held() -> None:
        started.set()
        assert release.wait(20)

    async def scenario() -> None:
        server = grpc.aio.server()
        pb_grpc.add_TerminalLinkServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        stream = Stream(pb_grpc.TerminalLinkStub(channel))
        await stream.send(register=_register("T-1"))
        assert (await stream.read()).HasField("register_ack")
        # The applier is held by one unit and one more waits: the queue is full.
        holder = asyncio.ensure_future(applier.apply(held))
        assert await asyncio.to_thread(started.wait, 10)
        waiting = asyncio.ensure_future(applier.apply(lambda: None))
        await asyncio.sleep(0.05)
        await stream.send(heartbeat=pb.Heartbeat(service_state=common_pb2.SERVICE_STATE_IN_SERVICE))
        ack = await stream.read(timeout=2)
        assert ack.HasField("heartbeat_ack")
        # A request that needs the applier is refused at once, retryable, with a wait.
        seq = await stream.send(tube_query=pb.TerminalMessage().tube_query)
        refused = await stream.read(timeout=2)
        assert refused.ack_seq == seq
        assert refused.error.code == "server_busy"
        assert refused.error.retry_after_ms == 500
        assert "saturated" in refused.error.message
        release.set()
        await asyncio.gather(holder, waiting)
        # The heartbeat's state reaches the registry with the next flush.
        states, touched, at = servicer.liveness.take_changes()
        assert touched == ["T-1"] or states == {"T-1": "in_service"}
        await stream.close()
        await channel.close(None)
        await server.stop(0)
        applier.stop()

    try:
        asyncio.run(scenario())
    finally:
        release.set()
        engine.dispose()


def test_liveness_bookkeeping() -> None:
    live = Liveness()
    live.heartbeat("T-1", "in_service")
    live.begin("T-2")
    states, touched, _ = live.take_changes()
    assert states == {"T-1": "in_service"} and touched == ["T-2"]
    # Nothing new from T-1, but T-2 still has a message in hand: it counts as seen.
    states, touched, _ = live.take_changes()
    assert states == {} and touched == ["T-2"]
    # The same state again is only a touch; a new one is written with its event.
    live.heartbeat("T-1", "in_service")
    live.end("T-2")
    states, touched, _ = live.take_changes()
    assert states == {} and touched == ["T-1"]
    live.heartbeat("T-1", "out_of_service")
    states, touched, _ = live.take_changes()
    assert states == {"T-1": "out_of_service"} and touched == []
    # A failed flush is kept for the next one.
    live.restore(states, touched)
    states, _, _ = live.take_changes()
    assert states == {"T-1": "out_of_service"}
    assert live.alive(60) == ["T-1", "T-2"]
    assert live.alive(-1) == []
    live.begin("T-3")
    assert live.alive(-1) == ["T-3"]
    live.forget("T-3")
    assert live.alive(-1) == []
