"""The terminal's recordings: the spool under the state directory and its uploader task,
as the agent daemon owns them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING

import grpc
from aiohttp import web

from branchline.agent.uplink import open_channel
from branchline.common.recordings.routes import register_recording_routes
from branchline.common.recordings.spool import RecordingSpool
from branchline.common.recordings.upload import Uploader
from branchline.common.recordings.viewing import register_viewing_routes

# Without certificates the server takes the caller from this metadata (server/auth.py).
PRINCIPAL_METADATA_KEY = "branchline-principal"

if TYPE_CHECKING:
    from branchline.agent.config import TerminalConfig
    from branchline.agent.journal.ejournal import EJournal


class TerminalRecordings:
    def __init__(self, terminal: TerminalConfig, ejournal: EJournal) -> None:
        self.spool = RecordingSpool(terminal.state_dir, ejournal)
        # Without certificates (development, --insecure-loopback) the terminal names itself.
        metadata = (
            ((PRINCIPAL_METADATA_KEY, f"terminal:{terminal.terminal_id}"),)
            if terminal.tls is None
            else ()
        )
        self.uploader = Uploader(self.spool, lambda: open_channel(terminal), metadata)
        self._terminal = terminal
        self._metadata = metadata
        self._task: asyncio.Task[None] | None = None

    def server_access(self) -> tuple[grpc.aio.Channel, tuple[tuple[str, str], ...]]:
        """A new channel to the server (as this terminal) and the metadata to call with."""
        return open_channel(self._terminal), self._metadata

    def kick(self) -> None:
        self.uploader.kick()

    def start(self) -> None:
        self._task = asyncio.create_task(self.uploader.run(), name="recordings-upload")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.spool.close_db()


def register_terminal_recordings(
    app: web.Application, recordings: TerminalRecordings | None, session_token: Callable[[], str]
) -> None:
    """The kiosk's recording routes: chunks in, and "my recordings" for the signed-in
    customer (``session_token`` gives their session; None recordings: none kept)."""
    if recordings is None:
        return
    register_recording_routes(app, recordings.spool, recordings.kick, session_token)
    register_viewing_routes(app, recordings.server_access, session_token)
