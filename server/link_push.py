"""Pushing a record to its terminal (ack_seq 0) from any thread: the services change records on
worker threads, the link's stream queues belong to the event loop. Used by the tube's
``tube_update`` and the cheque sale's ``cheque_update``."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from branchline.common.logs import log_event
from branchline.server.link import PushRefused, TerminalLinkServicer
from branchline.v1 import terminal_link_pb2 as link_pb

log = logging.getLogger("branchline.server.link_push")


class LinkPusher:
    """Queues pushes for terminals wherever their stream is (``push_anywhere``); a push that
    cannot be queued is dropped (logged): pushes are hints, the terminal also asks."""

    def __init__(self, link: TerminalLinkServicer, name: str, logger: logging.Logger) -> None:
        self._link = link
        self._name = name  # log events: <name>_pushed, <name>_push_dropped
        self._log = logger
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def bind_running(self) -> None:
        """Bind to the running loop, if any (else the first message binds it)."""
        try:
            self.bind(asyncio.get_running_loop())
        except RuntimeError:
            pass

    def send(self, terminal_id: str, message: link_pb.ServerMessage, **fields: Any) -> None:
        """Push ``message`` to ``terminal_id``; safe to call from any thread."""
        loop = self._loop
        if loop is None or loop.is_closed():
            log_event(
                self._log, f"{self._name}_push_dropped", logging.DEBUG, **fields, why="no loop"
            )
            return
        loop.call_soon_threadsafe(self._push, terminal_id, message, fields)

    def _push(self, terminal_id: str, message: link_pb.ServerMessage, fields: Any) -> None:
        try:
            self._link.push_anywhere(terminal_id, message)
        except PushRefused as exc:
            log_event(
                self._log,
                f"{self._name}_push_dropped",
                logging.DEBUG,
                terminal_id=terminal_id,
                **fields,
                why=str(exc),
            )
            return
        log_event(
            self._log, f"{self._name}_pushed", logging.DEBUG, terminal_id=terminal_id, **fields
        )
