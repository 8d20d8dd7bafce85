"""A terminal's link in unit tests: TerminalLink served on a loopback port with an agent's
real Uplink to connect to it, its devices as the agent reports them, and an async wait."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc

from branchline.agent.config import TerminalConfig
from branchline.agent.device_owner import DeviceSnapshot
from branchline.agent.service_state import ServiceState
from branchline.agent.uplink import Uplink
from branchline.common.enum_maps import SERVICE_STATE_TO_PB
from branchline.drivers.base import DeviceStatus
from branchline.server.auth import Authorizer
from branchline.server.link import TerminalLinkServicer
from branchline.server.storage import open_database
from branchline.v1 import terminal_link_pb2_grpc as pb_grpc
from tests.unit.sqlite_template import migrated_sqlite

IN_SERVICE = SERVICE_STATE_TO_PB[ServiceState.IN_SERVICE]

DEVICES = ("card_reader", "pin_pad", "tube_station", "printer")


def loopback_terminal(
    terminal_id: str, port: int, state_dir: Path, heartbeat_interval: float = 5.0
) -> TerminalConfig:
    """A terminal's configuration for a server on loopback without TLS, no devices required."""
    return TerminalConfig(
        terminal_id=terminal_id,
        branch="B1",
        kind="self_service",
        server=f"127.0.0.1:{port}",
        state_dir=state_dir,
        heartbeat_interval=heartbeat_interval,
        tls=None,
        required_devices=(),
    )


async def until(condition: Callable[[], Any], what: str, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def snapshot(name: str, status: DeviceStatus = DeviceStatus.ONLINE) -> DeviceSnapshot:
    return DeviceSnapshot(name=name, driver="sim", status=status, detail="")


async def link_stack(tmp_path: Path) -> AsyncIterator[tuple[TerminalLinkServicer, Uplink]]:
    engine = open_database(migrated_sqlite(tmp_path / "fleet.db"))
    servicer = TerminalLinkServicer(engine, "r1", 5.0, Authorizer(insecure=True))
    server = grpc.aio.server()
    pb_grpc.add_TerminalLinkServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    config = loopback_terminal("T-PUSH", port, tmp_path)
    uplink = Uplink(config, lambda: [], lambda: ServiceState.IN_SERVICE)
    yield servicer, uplink
    await server.stop(0)
    engine.dispose()
