"""The mobile path in unit tests: the server's settings with a phone gateway named, and the whole
stack — server, a terminal's Uplink, the gateway over HTTPS — for the gateway's phone API."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web

from branchline.agent.service_state import ServiceState
from branchline.agent.uplink import Uplink
from branchline.server.app import DispatchServer, ServerSettings
from branchline.server.mobile_gateway.app import Limits, make_app
from branchline.server.mobile_gateway.backend import Backend, BackendSettings
from branchline.server.mobile_gateway.main import https_context
from branchline.server.pki import init_pki
from branchline.v1 import mobile_pb2 as mpb
from branchline.v1 import terminal_link_pb2 as pb
from tests.unit.link_support import DEVICES, loopback_terminal, snapshot, until
from tests.unit.server_support import settings

GATEWAY = "https://phone.example:8443"


def server_settings(tmp_path: Path) -> ServerSettings:
    """A loopback server (server_support) whose pairing QR names the phone gateway."""
    return settings(tmp_path, mobile_url=GATEWAY)


@dataclass
class Stack:
    base: str
    uplink: Uplink
    updates: list[mpb.PairingUpdate]
    client_ssl: ssl.SSLContext
    db_url: str

    def phone(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self.client_ssl),
            cookie_jar=aiohttp.CookieJar(unsafe=True),
        )

    async def offer(self) -> mpb.PairingUpdate:
        await until(lambda: self.updates and self.updates[-1].state == "offering", "a QR")
        return self.updates[-1]


@asynccontextmanager
async def stack(tmp_path: Path, limits: Limits | None = None) -> AsyncIterator[Stack]:
    layout = init_pki(tmp_path / "pki", ["T-GW"], mobile_gateways=["gw1"])
    served = settings(tmp_path, mobile_url="https://127.0.0.1:8443")
    db_url = served.db_url
    server = DispatchServer(served)
    running = asyncio.create_task(server.run())
    await until(lambda: server.port and server.hub and server.hub._running, "the server")
    config = loopback_terminal("T-GW", server.port, tmp_path)
    uplink = Uplink(config, lambda: [snapshot(n) for n in DEVICES], lambda: ServiceState.IN_SERVICE)
    updates: list[mpb.PairingUpdate] = []

    async def on_update(message: pb.ServerMessage) -> None:
        updates.append(message.pairing_update)

    uplink.on_push("pairing_update", on_update)
    link_task = asyncio.create_task(uplink.run())
    backend = Backend(BackendSettings(f"127.0.0.1:{server.port}"))
    runner = web.AppRunner(make_app(backend, limits or Limits()))
    await runner.setup()
    site = web.TCPSite(
        runner, "127.0.0.1", 0, ssl_context=https_context(layout.server_cert, layout.server_key)
    )
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    client_ssl = ssl.create_default_context(cafile=str(layout.ca_cert))
    try:
        yield Stack(f"https://127.0.0.1:{port}", uplink, updates, client_ssl, db_url)
    finally:
        await runner.cleanup()
        await backend.close()
        link_task.cancel()
        await asyncio.gather(link_task, return_exceptions=True)
        server.request_stop()
        await running


def same_origin(base: str, csrf: str = "") -> dict[str, str]:
    headers = {"Origin": base, "Content-Type": "application/json"}
    if csrf:
        headers["X-CSRF-Token"] = csrf
    return headers
