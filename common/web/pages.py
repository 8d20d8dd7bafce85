"""The page servers' plumbing (the kiosk's, agent/kiosk/server.py; the console's,
server/console/web.py): one WebSocket per page, the page's frames parsed and refused by name,
frames to a page queued in memory and a page that stops reading dropped (its browser
reconnects and gets the full state again), same-origin sockets only, security headers."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web

from branchline.common.errors import InvalidArgument

# A page's actions are small; anything bigger is not from our page.
MAX_MESSAGE = 16 * 1024
# Frames waiting for one page before it is dropped as not reading.
MAX_BACKLOG = 256

Send = Callable[[str], None]


class PageSession(Protocol):
    """The session behind the pages: it sends each page its frames and takes their actions."""

    def connect(self, send: Send) -> Callable[[], None]: ...

    def encode(self, frame: dict[str, Any]) -> str: ...

    async def handle(self, action: str, data: dict[str, Any]) -> Any: ...


async def read_bounded(request: web.Request, limit: int) -> bytes:
    """The whole body, or its first ``limit + 1`` bytes (so the caller sees it is too big).

    ``StreamReader.read(n)`` returns what has arrived so far, not ``n`` bytes: a body that
    comes in two TCP segments must be read until the end."""
    data = bytearray()
    while len(data) <= limit:
        piece = await request.content.read(limit + 1 - len(data))
        if not piece:
            break
        data.extend(piece)
    return bytes(data)


def same_origin(request: web.Request) -> bool:
    """A WebSocket from another origin (some other page in the same browser) is refused."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not a browser (tests, tools)
    return urlsplit(origin).netloc == request.host


def parse_action(text: str) -> tuple[str, dict[str, Any]]:
    """(action, data) from a page's frame; InvalidArgument naming what was wrong."""
    try:
        message = json.loads(text)
    except ValueError:
        raise InvalidArgument("frame", "is not JSON", reason="invalid_frame") from None
    if not isinstance(message, dict) or message.get("type") != "action":
        raise InvalidArgument("type", 'must be "action"', reason="invalid_frame")
    action = message.get("action")
    if not isinstance(action, str) or not action:
        raise InvalidArgument("action", "must name an action", reason="invalid_frame")
    data = message.get("data", {})
    if not isinstance(data, dict):
        raise InvalidArgument("data", "must be an object", reason="invalid_frame")
    return action, data


def typed_frame(text: str, types: Collection[str]) -> dict[str, Any] | None:
    """A frame whose ``type`` is one of ``types`` (a call's signalling), or None."""
    with contextlib.suppress(ValueError):
        message = json.loads(text)
        if isinstance(message, dict) and message.get("type") in types:
            return message
    return None


def add_security_headers(app: web.Application, headers: Mapping[str, str]) -> None:
    """Every response carries ``headers`` (unless the handler set its own)."""

    async def prepare(request: web.Request, response: web.StreamResponse) -> None:
        for name, value in headers.items():
            response.headers.setdefault(name, value)

    app.on_response_prepare.append(prepare)


async def serve_page(
    request: web.Request,
    session: PageSession,
    *,
    heartbeat: float,
    frame_types: Collection[str],
    on_frame: Callable[[Send, dict[str, Any]], Awaitable[bool]],
    refused: Callable[[InvalidArgument], dict[str, Any]],
    page_gone: Callable[[Send], Awaitable[None]],
) -> web.WebSocketResponse:
    """One page's WebSocket until it closes: a frame of ``frame_types`` goes to ``on_frame``
    (True: taken), an action to the session, a bad frame is answered ``refused`` (with the
    fields ``refused`` gives)."""
    ws = web.WebSocketResponse(heartbeat=heartbeat, max_msg_size=MAX_MESSAGE)
    await ws.prepare(request)
    outbox: asyncio.Queue[str] = asyncio.Queue()

    def send(text: str) -> None:
        if outbox.qsize() >= MAX_BACKLOG:
            raise RuntimeError("page is not reading its frames")
        outbox.put_nowait(text)

    async def write() -> None:
        while True:
            await ws.send_str(await outbox.get())

    disconnect = session.connect(send)
    writer = asyncio.ensure_future(write())
    try:
        async for message in ws:
            if message.type is not WSMsgType.TEXT:
                continue
            other = typed_frame(message.data, frame_types)
            if other is not None and await on_frame(send, other):
                continue
            try:
                action, data = parse_action(message.data)
            except InvalidArgument as exc:
                frame = {"type": "refused", "action": "", **refused(exc), "message": exc.message}
                send(session.encode(frame))
                continue
            await session.handle(action, data)
    finally:
        disconnect()
        await page_gone(send)
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await writer
    return ws
