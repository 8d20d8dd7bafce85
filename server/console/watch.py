"""Following a server watch stream for as long as the console runs: reconnect with a
jittered backoff after the server restarts or a replica goes away, and say so on the page."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import Any

import grpc

from branchline.common.logs import log_event

log = logging.getLogger("branchline.server.console")

BACKOFF_FIRST = 0.2
BACKOFF_CAP = 3.0
# Refusals that retrying would not change.
FINAL = (
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.UNIMPLEMENTED,
)


async def follow(
    open_stream: Callable[[], Any],
    on_item: Callable[[Any], None],
    on_open: Callable[[], None],
    on_down: Callable[[], None],
) -> None:
    """Read ``open_stream()`` forever. ``on_open`` runs each time the stream is (re)opened
    (the caller re-reads its lists: that also proves the server is there); ``on_down`` when it
    is lost. ``open_stream`` is called again on every reconnect and resumes after what was
    seen. A final refusal (permission, bad request) is raised: retrying would not change it."""
    delay = BACKOFF_FIRST
    while True:
        stream = open_stream()
        on_open()
        try:
            async for item in stream:
                delay = BACKOFF_FIRST
                on_item(item)
            log_event(log, "watch_ended", logging.WARNING)  # server shutting down: reconnect
        except grpc.aio.AioRpcError as exc:
            if exc.code() in FINAL:
                log_event(log, "watch_refused", logging.ERROR, status=exc.code().name)
                raise
            log_event(log, "watch_lost", logging.WARNING, status=exc.code().name)
        finally:
            stream.cancel()
        on_down()
        await asyncio.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, BACKOFF_CAP)
