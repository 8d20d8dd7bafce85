"""The server in process for unit tests: settings for a plain loopback server on a free port
with its database and recordings under the test's directory, and a run that returns once the
server is ready (or raises what stopped it)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from branchline.server.app import DispatchServer, ServerSettings


def settings(tmp_path: Path, **overrides: Any) -> ServerSettings:
    values: dict[str, Any] = {
        "listen": "127.0.0.1:0",
        "db_url": f"sqlite:///{tmp_path / 'server.db'}",
        "tls_ca": None,
        "tls_cert": None,
        "tls_key": None,
        "insecure_loopback": True,
        "heartbeat_interval": 5.0,
        "heartbeat_timeout": 15.0,
        "shutdown_drain": 0.0,
        "replica": "r1",
        "recordings_dir": tmp_path / "recordings",
    }
    values.update(overrides)
    return ServerSettings(**values)


async def run_until_ready(server: DispatchServer) -> asyncio.Task[int]:
    running = asyncio.create_task(server.run())
    for _ in range(500):
        if server.port and server.hub is not None and server.hub._running:
            return running
        if running.done():
            running.result()  # raises what stopped it
        await asyncio.sleep(0.01)
    raise AssertionError("the server did not get ready")
