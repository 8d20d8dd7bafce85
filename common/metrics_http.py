"""A Prometheus text-format endpoint for one registry, for any of our asyncio processes.

The server, the agent and (later) the phone gateway each build their own
``CollectorRegistry`` (never the global one, so several in one test process do not
collide) and serve it here: ``GET /metrics`` on an aiohttp site. Collection runs in a
worker thread, since custom collectors may read a database at scrape time; scrapes are
serialized so two scrapers never run the same collectors at once.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from branchline.common.errors import InvalidArgument

PATH = "/metrics"


def parse_listen(field: str, listen: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) -> (host, port); port 0 picks a free one."""
    host, sep, port_text = listen.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise InvalidArgument(field, f"expected HOST:PORT, got {listen!r}")
    return host, int(port_text)


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class MetricsEndpoint:
    runner: web.AppRunner
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{PATH}"

    async def stop(self) -> None:
        await self.runner.cleanup()


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind the endpoint's socket now, so a bad address fails at start-up (OSError)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(64)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


async def serve_metrics(registry: CollectorRegistry, sock: socket.socket) -> MetricsEndpoint:
    """Serve ``registry`` on ``http://<sock's address>/metrics`` until ``stop()``."""
    lock = asyncio.Lock()

    async def metrics(_request: web.Request) -> web.Response:
        async with lock:
            body = await asyncio.to_thread(generate_latest, registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get(PATH, metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    host, port = sock.getsockname()[:2]
    try:
        await web.SockSite(runner, sock).start()
    except OSError:
        await runner.cleanup()
        raise
    return MetricsEndpoint(runner, host, int(port))
