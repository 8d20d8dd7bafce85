"""The kiosk page server: static files and the WebSocket, with aiohttp's real client."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from branchline.agent.kiosk.server import KioskServer, start_kiosk
from branchline.agent.kiosk.settings import KioskSettings
from tests.unit.kiosk_support import FakeAgent, card_and_pin, verified

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]


async def receive(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    message = await asyncio.wait_for(ws.receive(), 5)
    assert message.type is aiohttp.WSMsgType.TEXT, message
    frame: dict[str, Any] = json.loads(message.data)
    return frame


async def until_screen(ws: aiohttp.ClientWebSocketResponse, screen: str) -> dict[str, Any]:
    while True:
        frame = await receive(ws)
        if frame["type"] == "screen" and frame["screen"] == screen:
            return frame


async def serve(tmp_path: Path) -> tuple[FakeAgent, KioskServer]:
    agent = FakeAgent(tmp_path, KioskSettings(port=0))
    server = KioskServer(agent)  # type: ignore[arg-type]
    await server.start()
    return agent, server


async def test_page_and_static_files_are_served_with_a_strict_policy(tmp_path: Path) -> None:
    agent, server = await serve(tmp_path)
    try:
        assert (tmp_path / "kiosk.url").read_text().strip() == server.url
        assert server.url.startswith("http://127.0.0.1:")
        async with aiohttp.ClientSession() as http:
            async with http.get(server.url) as page:
                assert page.status == 200
                html = await page.text()
                assert 'type="module" src="/static/app.js"' in html
                assert 'data-role="connection"' in html and 'data-action="language"' in html
                assert "default-src 'self'" in page.headers["Content-Security-Policy"]
            for name, kind in (("app.js", "javascript"), ("style.css", "css")):
                async with http.get(server.url + "static/" + name) as asset:
                    assert asset.status == 200 and kind in asset.headers["Content-Type"]
            async with http.get(server.url + "healthz") as health:
                assert await health.text() == "ok"
    finally:
        await server.stop()
    assert not (tmp_path / "kiosk.url").exists()


async def test_a_page_gets_catalogue_and_screen_then_every_change(tmp_path: Path) -> None:
    agent, server = await serve(tmp_path)
    try:
        async with aiohttp.ClientSession() as http:
            async with (
                http.ws_connect(server.url + "ws") as one,
                http.ws_connect(server.url + "ws") as two,
            ):
                for ws in (one, two):
                    catalogue = await receive(ws)
                    assert catalogue["type"] == "catalogue" and catalogue["lang"] == "zh-CN"
                    screen = await receive(ws)
                    assert screen["type"] == "screen" and screen["screen"] == "attract"
                await one.send_json(
                    {"type": "action", "action": "language", "data": {"lang": "en"}}
                )
                for ws in (one, two):
                    catalogue = await receive(ws)
                    assert catalogue["type"] == "catalogue" and catalogue["lang"] == "en"
                    screen = await receive(ws)
                    assert screen["lang"] == "en" and screen["screen"] == "attract"
    finally:
        await server.stop()


async def test_bad_frames_are_refused_naming_what_was_wrong(tmp_path: Path) -> None:
    agent, server = await serve(tmp_path)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(server.url + "ws") as ws:
                await until_screen(ws, "attract")
                for text, field in [
                    ("not json", "frame"),
                    (json.dumps({"type": "hello"}), "type"),
                    (json.dumps({"type": "action"}), "action"),
                    (json.dumps({"type": "action", "action": "start", "data": []}), "data"),
                    (json.dumps({"type": "action", "action": "start", "data": {}}), "service"),
                ]:
                    await ws.send_str(text)
                    refused = await receive(ws)
                    assert refused["type"] == "refused" and refused["field"] == field, refused
    finally:
        await server.stop()


async def test_another_origin_cannot_open_the_socket(tmp_path: Path) -> None:
    agent, server = await serve(tmp_path)
    try:
        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(server.url + "ws", origin="http://evil.example")
            assert refused.value.status == 403
            own = server.url.rstrip("/")
            async with http.ws_connect(server.url + "ws", origin=own) as ws:
                assert (await receive(ws))["type"] == "catalogue"
    finally:
        await server.stop()


async def test_a_full_signed_in_session_sends_the_page_no_secret(tmp_path: Path) -> None:
    """Everything the page receives while a customer signs in and looks around."""
    agent, server = await serve(tmp_path)
    go = card_and_pin(agent, keys=6)
    agent.uplink.pin_replies.append(verified())
    received: list[str] = []
    try:
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(server.url + "ws") as ws:

                async def next_screen(name: str) -> dict[str, Any]:
                    while True:
                        message = await asyncio.wait_for(ws.receive(), 5)
                        received.append(message.data)
                        frame = json.loads(message.data)
                        if frame["type"] == "screen" and frame["screen"] == name:
                            return frame

                await next_screen("attract")
                await ws.send_json(
                    {"type": "action", "action": "start", "data": {"service": "deposit"}}
                )
                await next_screen("pin")
                go.set()
                form = await next_screen("deposit_form")
                assert form["data"]["accounts"][0]["account_id"] == "ACC-1"
                await ws.send_json({"type": "action", "action": "back", "data": {}})
                await next_screen("menu")
                await ws.send_json({"type": "action", "action": "finish", "data": {}})
                await next_screen("take_card")
    finally:
        await server.stop()
    everything = "\n".join(received)
    pin_screens = [json.loads(t) for t in received if '"screen":"pin"' in t]
    assert [f["data"]["digits"] for f in pin_screens] == [0, 1, 2, 3, 4, 5, 6]
    for secret in ("4761739001010010", "2512101", "server-session-token", "00" * 8, "FF" * 10):
        assert secret not in everything, secret
    assert "pin_block" not in everything and "track" not in everything


async def test_a_port_in_use_leaves_the_agent_running_without_the_page(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        agent = FakeAgent(tmp_path, KioskSettings(port=port))
        assert await start_kiosk(agent) is None  # type: ignore[arg-type]
    disabled = FakeAgent(tmp_path, KioskSettings(enabled=False))
    assert await start_kiosk(disabled) is None  # type: ignore[arg-type]
