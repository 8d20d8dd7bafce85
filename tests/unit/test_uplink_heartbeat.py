"""The agent's heartbeat keeps its clock while the terminal is busy with requests.

The server's liveness check reads only heartbeats (and registration), so an uplink that
heartbeat only when it had nothing else to send went silent — and was marked offline — while
a transaction polled the server (found by the tube ingest benchmark). A fake TerminalLink
server answers every request at once and notes when each heartbeat arrives.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from branchline.agent.service_state import ServiceState
from branchline.agent.uplink import Uplink
from branchline.v1 import terminal_link_pb2 as pb
from branchline.v1 import terminal_link_pb2_grpc as pb_grpc
from branchline.v1 import tube_pb2
from tests.unit.link_support import loopback_terminal

pytestmark = pytest.mark.timeout(60)
INTERVAL = 0.3


class Recorder(pb_grpc.TerminalLinkServicer):
    def __init__(self) -> None:
        self.heartbeats: list[float] = []
        self.requests = 0

    async def Connect(
        self, request_iterator: AsyncIterator[pb.TerminalMessage], context: object
    ) -> AsyncIterator[pb.ServerMessage]:
        async for message in request_iterator:
            body = message.WhichOneof("body")
            if body == "register":
                yield pb.ServerMessage(ack_seq=message.seq, register_ack=pb.RegisterAck())
            elif body == "heartbeat":
                self.heartbeats.append(time.monotonic())
            else:
                self.requests += 1
                yield pb.ServerMessage(ack_seq=message.seq, tube_reply=tube_pb2.TubeReply())


def test_a_busy_uplink_still_heartbeats_every_interval(tmp_path: Path) -> None:
    asyncio.run(busy_uplink(tmp_path))


async def busy_uplink(tmp_path: Path) -> None:
    recorder = Recorder()
    server = grpc.aio.server()
    pb_grpc.add_TerminalLinkServicer_to_server(recorder, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    config = loopback_terminal("T-BUSY", port, tmp_path, heartbeat_interval=INTERVAL)
    uplink = Uplink(config, lambda: [], lambda: ServiceState.IN_SERVICE)
    registered = asyncio.Event()

    async def on_connected() -> None:
        registered.set()

    uplink.on_connected(on_connected)
    task = asyncio.create_task(uplink.run())
    try:
        await asyncio.wait_for(registered.wait(), 10)
        # Requests far more often than the heartbeat interval, for ten intervals.
        started = time.monotonic()
        while time.monotonic() - started < 10 * INTERVAL:
            await uplink.request(timeout=5, tube_query=tube_pb2.TubeQuery(txn_id="x"))
            await asyncio.sleep(0.02)
        beats = [t for t in recorder.heartbeats if t >= started]
        assert recorder.requests > 50
        assert len(beats) >= 8, f"{len(beats)} heartbeats in {10 * INTERVAL:.1f} s of traffic"
        gaps = [b - a for a, b in zip([started, *beats], beats, strict=False)]
        assert max(gaps) < 2 * INTERVAL, gaps
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await server.stop(0)
