"""The simulated payShield's TCP side: length-prefixed frames on an asyncio server.

Each connection is served in order, one command at a time, as a payShield does. A frame
cut short by the peer closes that connection only; the server keeps listening.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from branchline.common.hsm.payshield.wire import frame
from branchline.common.logs import log_event

from .emulation import PayShieldEmulation

log = logging.getLogger("branchline.sim.hsm")


class PayShieldServer:
    def __init__(self, emulation: PayShieldEmulation) -> None:
        self.emulation = emulation
        self._server: asyncio.Server | None = None
        self._clients: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

    async def start(self, host: str, port: int) -> tuple[str, int]:
        self._server = await asyncio.start_server(self._serve, host, port)
        address = self._server.sockets[0].getsockname()
        return str(address[0]), int(address[1])

    async def close(self) -> None:
        """Stop listening, hang up on every client and wait for their handlers to end."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._clients.values()):
            writer.close()
        if self._clients:
            await asyncio.gather(*self._clients, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        task = asyncio.current_task()
        if task is not None:
            self._clients[task] = writer
        log_event(log, "hsm_connection_open", peer=str(peer))
        try:
            while True:
                head = await reader.readexactly(2)
                payload = await reader.readexactly(int.from_bytes(head, "big"))
                writer.write(frame(self.emulation.handle(payload)))
                await writer.drain()
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                log_event(log, "hsm_frame_cut_short", logging.WARNING, peer=str(peer))
        except (ConnectionError, OSError):
            pass
        finally:
            if task is not None:
                self._clients.pop(task, None)
            log_event(log, "hsm_connection_closed", peer=str(peer))
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()
