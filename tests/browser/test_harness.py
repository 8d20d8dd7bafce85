"""The browser harness itself: Debian's Chromium starts, and the recorder keeps every
WebSocket frame and HTTP body a page receives (the secrets test relies on it)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
from aiohttp import web
from playwright.sync_api import Browser

from tests.browser.kiosk_support import Received, free_port
from tests.browser.page_secrets import secrets_in

PAGE = """<!doctype html><html lang="en"><body><p id="got">waiting</p>
<script src="/app.js"></script></body></html>"""
SCRIPT = """const ws = new WebSocket(`ws://${location.host}/ws`);
ws.onmessage = (e) => { document.getElementById("got").textContent = JSON.parse(e.data).n; };
ws.onopen = () => ws.send("hello");"""


@pytest.fixture
def little_server() -> Iterator[str]:
    """A page, a script and a WebSocket that answers "hello" with three frames."""

    async def index(request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    async def app_js(request: web.Request) -> web.Response:
        return web.Response(text=SCRIPT, content_type="application/javascript")

    async def ws(request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        async for message in socket:
            if message.data == "hello":
                for n in ("one", "two", "three-4111111111111111"):
                    await socket.send_json({"type": "screen", "n": n})
        return socket

    app = web.Application()
    app.add_routes([web.get("/", index), web.get("/app.js", app_js), web.get("/ws", ws)])
    port = free_port()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    ready = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def test_recorder_keeps_every_frame_and_body(browser: Browser, little_server: str) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        received = Received()
        received.attach(page)
        page.goto(little_server)
        page.locator("#got", has_text="three").wait_for(timeout=10000)
        page.wait_for_timeout(50)
        assert [s["n"] for s in received.states()] == ["one", "two", "three-4111111111111111"]
        urls = {url.removeprefix(little_server): status for url, status, _ in received.responses}
        assert urls == {"": 200, "app.js": 200}
        everything = received.everything()
        assert "new WebSocket" in everything and 'id="got"' in everything
        assert "4111111111111111" in everything
        # The secrets check every kiosk test ends with sees it (a Luhn-valid card number).
        assert "a card-like number 411111..." in secrets_in(received)
    finally:
        context.close()
