"""The cheque printer's "cable": an IPP-over-HTTP endpoint on a loopback port.

Plugging binds a port and publishes ``ipp://127.0.0.1:PORT/ipp/print`` in
``<run-dir>/dev/cheque_printer.uri`` (written atomically, once the server listens);
unplugging stops the server and removes the file, as a printer dropping off the network.
It offers the same surface the control API uses on a serial line (link_path, plugged, write,
set_baud) so the simulator treats every device alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from branchline.drivers.cheque_printer.ipp_codec import IppMessage, decode, encode
from branchline.drivers.malformed import Malformed

log = logging.getLogger("branchline.sim.cheque_printer")

IPP_PATH = "/ipp/print"
MAX_REQUEST = 16 * 1024 * 1024


class IppEndpoint:
    def __init__(self, link_path: Path, handle: Callable[[IppMessage], IppMessage]) -> None:
        self.link_path = link_path
        self._handle = handle
        self._runner: web.AppRunner | None = None
        self._starting: asyncio.Task[None] | None = None
        self.port = 0
        self.slave_name = ""  # the URI, shown where a serial device shows its tty
        self.baud = 0
        self.requests = 0
        self.bad_frames = 0

    @property
    def plugged(self) -> bool:
        return self._starting is not None

    @property
    def uri(self) -> str:
        return f"ipp://127.0.0.1:{self.port}{IPP_PATH}"

    def plug(self) -> None:
        if self.plugged:
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))  # the same port again after a replug
        sock.listen(64)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        self.slave_name = self.uri
        self._starting = asyncio.get_running_loop().create_task(self._serve(sock))

    async def _serve(self, sock: socket.socket) -> None:
        app = web.Application(client_max_size=MAX_REQUEST)
        app.router.add_post(IPP_PATH, self._on_post)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        self._runner = runner
        self.link_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.link_path.with_name(f".{self.link_path.name}.tmp")
        tmp.write_text(self.uri + "\n")
        tmp.replace(self.link_path)

    def unplug(self) -> None:
        if self._starting is None:
            return
        with contextlib.suppress(FileNotFoundError):
            self.link_path.unlink()
        starting, self._starting = self._starting, None
        runner, self._runner = self._runner, None
        asyncio.get_running_loop().create_task(self._stop(starting, runner))

    @staticmethod
    async def _stop(starting: asyncio.Task[None], runner: web.AppRunner | None) -> None:
        if not starting.done():
            starting.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await starting
        if runner is not None:
            await runner.cleanup()

    def set_baud(self, baud: int) -> None:
        raise ValueError("a network printer has no line speed")

    def write(self, data: bytes) -> None:
        """Garbage injection: there is no byte stream to the driver on an HTTP link."""
        log.info("ignored %d bytes written to the IPP endpoint", len(data))

    async def _on_post(self, request: web.Request) -> web.Response:
        self.requests += 1
        if request.content_type != "application/ipp":
            return web.Response(status=415, text="Content-Type must be application/ipp")
        body = await request.read()
        message = decode(body)
        if isinstance(message, Malformed):
            self.bad_frames += 1
            return web.Response(status=400, text=message.reason)
        reply = self._handle(message)
        return web.Response(body=encode(reply), content_type="application/ipp")
