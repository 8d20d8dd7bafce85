"""A scripted customer on the kiosk page's WebSocket (docs/kiosk.md): sends actions, reads the
agent's screen frames. For tests that drive a flow without a browser (crash runs)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import aiohttp


class PageGone(Exception):
    """The agent went away (the socket closed)."""


class KioskSocket:
    def __init__(self, url: str) -> None:
        self.url = url
        self.frame: dict[str, Any] = {}
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None

    async def __aenter__(self) -> KioskSocket:
        self._session = aiohttp.ClientSession()
        self._ws = await self._session.ws_connect(self.url + "ws")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._session is not None:
            await self._session.close()

    async def act(self, action: str, **data: Any) -> None:
        assert self._ws is not None
        try:
            await self._ws.send_str(json.dumps({"type": "action", "action": action, "data": data}))
        except (ConnectionError, RuntimeError) as exc:
            raise PageGone(str(exc)) from None

    async def next_frame(self, timeout: float) -> None:
        """Read frames for up to ``timeout`` seconds, or until one screen frame came."""
        assert self._ws is not None
        try:
            message = await self._ws.receive(timeout=timeout)
        except TimeoutError:
            return
        self._take(message)

    def _take(self, message: aiohttp.WSMessage) -> None:
        if message.type in (
            aiohttp.WSMsgType.CLOSED,
            aiohttp.WSMsgType.CLOSE,
            aiohttp.WSMsgType.ERROR,
            aiohttp.WSMsgType.CLOSING,
        ):
            raise PageGone("the kiosk page's socket closed")
        if message.type is aiohttp.WSMsgType.TEXT:
            frame = json.loads(message.data)
            if frame.get("type") == "screen":
                self.frame = frame

    async def wait(
        self,
        screen: str,
        until: Callable[[dict[str, Any]], bool] = lambda d: True,
        timeout: float = 30,
    ) -> dict[str, Any]:
        """The data of the first screen frame showing ``screen`` with ``until(data)``."""
        assert self._ws is not None
        deadline = time.monotonic() + timeout
        while True:
            data = self.frame.get("data") or {}
            if self.frame.get("screen") == screen and until(data):
                return dict(data)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"screen {screen!r} not shown in time; last {self.frame}")
            try:
                message = await self._ws.receive(timeout=left)
            except TimeoutError:
                continue
            if message.type in (
                aiohttp.WSMsgType.CLOSED,
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.ERROR,
                aiohttp.WSMsgType.CLOSING,
            ):
                raise PageGone("the kiosk page's socket closed")
            if message.type is aiohttp.WSMsgType.TEXT:
                frame = json.loads(message.data)
                if frame.get("type") == "screen":
                    self.frame = frame
