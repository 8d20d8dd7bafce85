"""When the TerminalLink stream drops, every request waiting on it fails at once with
"link lost" (not after its 15 s timeout), and nothing queued for the lost stream is sent on
the next one. A fake TerminalLink server that never answers requests is stopped while one
is waiting, then a fresh one on the same port takes the reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from branchline.agent.service_state import ServiceState
from branchline.agent.uplink import BACKOFF_FIRST, Uplink, UplinkUnavailable
from branchline.v1 import terminal_link_pb2 as pb
from branchline.v1 import terminal_link_pb2_grpc as pb_grpc
from branchline.v1 import tube_pb2
from tests.unit.link_support import loopback_terminal

pytestmark = pytest.mark.timeout(60)


class Silent(pb_grpc.TerminalLinkServicer):
    """Acknowledges registration, notes every other body and never answers it."""

    def __init__(self) -> None:
        self.registered = asyncio.Event()
        self.bodies: list[str] = []
        self.got_request = asyncio.Event()
        self.queried: list[str] = []

    async def Connect(
        self, request_iterator: AsyncIterator[pb.TerminalMessage], context: object
    ) -> AsyncIterator[pb.ServerMessage]:
        async for message in request_iterator:
            body = message.WhichOneof("body") or ""
            self.bodies.append(body)
            if body == "register":
                self.registered.set()
                yield pb.ServerMessage(ack_seq=message.seq, register_ack=pb.RegisterAck())
            elif body == "tube_query":
                self.queried.append(message.tube_query.txn_id)
                self.got_request.set()


async def serve(servicer: Silent, port: int = 0) -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server()
    pb_grpc.add_TerminalLinkServicer_to_server(servicer, server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    return server, bound


def test_a_request_fails_with_link_lost_within_a_second_and_is_not_resent(
    tmp_path: Path,
) -> None:
    asyncio.run(link_lost(tmp_path))


async def link_lost(tmp_path: Path) -> None:
    first = Silent()
    server, port = await serve(first)
    config = loopback_terminal("T-LOST", port, tmp_path)
    uplink = Uplink(config, lambda: [], lambda: ServiceState.IN_SERVICE)
    connected = asyncio.Event()

    async def on_connected() -> None:
        connected.set()

    uplink.on_connected(on_connected)
    task = asyncio.create_task(uplink.run())
    second: grpc.aio.Server | None = None
    try:
        await asyncio.wait_for(connected.wait(), 10)
        connected.clear()
        pending = asyncio.create_task(
            uplink.request(timeout=15, tube_query=tube_pb2.TubeQuery(txn_id="T-1"))
        )
        await asyncio.wait_for(first.got_request.wait(), 5)

        await server.stop(0)
        stopped = time.monotonic()
        with pytest.raises(UplinkUnavailable, match="link lost"):
            await asyncio.wait_for(pending, 5)
        assert time.monotonic() - stopped < 1.0

        # Nothing of the lost stream is kept to be sent on the next one.
        assert uplink._outgoing == [] and uplink._waiting == {}
        renewed = Silent()
        second, _ = await serve(renewed, port)
        await asyncio.wait_for(connected.wait(), 20)
        # A fresh request on the new stream goes through, and is the only one sent there.
        fresh = asyncio.create_task(
            uplink.request(timeout=15, tube_query=tube_pb2.TubeQuery(txn_id="T-2"))
        )
        await asyncio.wait_for(renewed.got_request.wait(), 5)
        await asyncio.sleep(0.3)
        assert renewed.queried == ["T-2"], renewed.queried
        fresh.cancel()
        await asyncio.gather(fresh, return_exceptions=True)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await server.stop(0)
        if second is not None:
            await second.stop(0)


def test_a_link_that_was_up_retries_at_once_after_it_drops(tmp_path: Path) -> None:
    """Attempts while the server is down wait longer and longer; once a connection has been
    up, the first retry after it drops waits the shortest time again, not the grown one."""
    asyncio.run(backoff_resets(tmp_path))


async def backoff_resets(tmp_path: Path) -> None:
    probe, port = await serve(Silent())  # a free port, then nothing listening on it
    await probe.stop(None)
    config = loopback_terminal("T-BACKOFF", port, tmp_path)
    uplink = Uplink(config, lambda: [], lambda: ServiceState.IN_SERVICE)
    delays: list[float] = []
    retried = asyncio.Event()

    async def record(delay: float) -> None:
        delays.append(delay)
        retried.set()
        await asyncio.sleep(0.01)

    uplink.pause_before_retry = record
    connected = asyncio.Event()

    async def on_connected() -> None:
        connected.set()

    uplink.on_connected(on_connected)
    task = asyncio.create_task(uplink.run())
    try:
        while len(delays) < 4:
            await asyncio.wait_for(retried.wait(), 30)
            retried.clear()
        assert delays[3] > BACKOFF_FIRST, delays  # 0.5, 1, 2, 4 s (jittered by half at most)
        servicer = Silent()
        server, _ = await serve(servicer, port)
        await asyncio.wait_for(connected.wait(), 30)
        before = len(delays)
        await server.stop(None)
        while len(delays) == before:
            await asyncio.wait_for(retried.wait(), 30)
            retried.clear()
        assert delays[before] <= BACKOFF_FIRST, delays
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
