"""The attract screen's phone option: the QR drawn by the agent and served same-origin, the
short code, the matching code once paired, cancel at the terminal; the page never gets the
handle in its data."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import zxingcpp
from PIL import Image, ImageDraw

from branchline.agent.kiosk.flows.phone import render_qr
from branchline.agent.kiosk.server import KioskServer
from branchline.agent.kiosk.settings import KioskSettings
from branchline.v1 import mobile_pb2
from branchline.v1 import terminal_link_pb2 as link_pb2
from tests.unit.kiosk_support import FakeAgent

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]

URL = "https://phone.example:8443/p/Q0uXwXrV3y4p8W6m2vK7rZ1a"
HANDLE = URL.rsplit("/", 1)[1]


def offering(url: str = URL, short_code: str = "ABCD-EFGH", ended: str = "") -> Any:
    return mobile_pb2.PairingUpdate(
        state="offering",
        url=url,
        handle=url.rsplit("/", 1)[1],
        short_code=short_code,
        last_end_reason=ended,
    )


async def push(agent: FakeAgent, update: mobile_pb2.PairingUpdate) -> None:
    handler = agent.uplink.push_handlers["pairing_update"]
    await handler(link_pb2.ServerMessage(pairing_update=update))


async def attract_phone(ws: aiohttp.ClientWebSocketResponse, state: str) -> dict[str, Any]:
    """The newest attract frame whose phone panel is in ``state``."""
    while True:
        message = await asyncio.wait_for(ws.receive(), 5)
        frame = json.loads(message.data)
        assert HANDLE not in message.data  # the handle is only inside the image
        phone = frame.get("data", {}).get("phone") if frame["type"] == "screen" else None
        if phone and phone["state"] == state:
            return dict(phone)


def rasterise(svg: str, scale: int = 8) -> Image.Image:
    """The SVG's module squares (``M x,y H..V..H..z``) drawn black on white."""
    side = int(re.search(r'viewBox="0 0 (\d+) \d+"', svg).group(1))  # type: ignore[union-attr]
    image = Image.new("L", (side * scale, side * scale), 255)
    draw = ImageDraw.Draw(image)
    for x, y in re.findall(r"M(\d+),(\d+)H", svg):
        left, top = int(x) * scale, int(y) * scale
        draw.rectangle([left, top, left + scale - 1, top + scale - 1], fill=0)
    return image


async def test_the_qr_decodes_to_the_url() -> None:
    svg = render_qr(URL).decode()
    assert 'fill="white"' in svg  # the quiet zone is white whatever the page's colours
    decoded = zxingcpp.read_barcodes(rasterise(svg))
    assert [d.text for d in decoded] == [URL]


async def test_attract_shows_the_qr_then_the_matching_code_and_cancels(tmp_path: Path) -> None:
    agent = FakeAgent(tmp_path, KioskSettings(port=0))
    server = KioskServer(agent)  # type: ignore[arg-type]
    await server.start()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(server.url + "phone/qr.svg") as none_yet:
                assert none_yet.status == 404
            async with http.ws_connect(server.url + "ws") as ws:
                await push(agent, offering())
                shown = await attract_phone(ws, "offering")
                assert shown["short_code"] == "ABCD-EFGH"
                async with http.get(server.url + shown["qr"].lstrip("/")) as image:
                    assert image.status == 200
                    assert image.headers["Content-Type"] == "image/svg+xml"
                    assert (await image.read()) == render_qr(URL)

                # A rotation gives the image a new address.
                await push(agent, offering(URL + "x", "JKMN-PQRS"))
                rotated = await attract_phone(ws, "offering")
                assert rotated["qr"] != shown["qr"] and rotated["short_code"] == "JKMN-PQRS"

                await push(
                    agent,
                    mobile_pb2.PairingUpdate(state="paired", pairing_id="p1", matching_code="0427"),
                )
                paired = await attract_phone(ws, "paired")
                assert paired == {"state": "paired", "matching_code": "0427"}
                async with http.get(server.url + "phone/qr.svg") as gone:
                    assert gone.status == 404

                agent.uplink.pairing_reply = offering(
                    URL + "y", "TUVW-XYZ2", ended="canceled_by_terminal"
                )
                await ws.send_json({"type": "action", "action": "phone_cancel", "data": {}})
                again = await attract_phone(ws, "offering")
                assert again["ended"] == "canceled_by_terminal"
                assert {"pairing_cancel"} <= set(agent.uplink.requests[-1])

                # Nothing paired any more: a second cancel is refused, naming why.
                await ws.send_json({"type": "action", "action": "phone_cancel", "data": {}})
                while True:
                    frame = json.loads((await asyncio.wait_for(ws.receive(), 5)).data)
                    if frame["type"] == "refused":
                        break
                assert frame["action"] == "phone_cancel"
    finally:
        await server.stop()


async def test_no_phone_option_while_the_bank_is_unreachable(tmp_path: Path) -> None:
    agent = FakeAgent(tmp_path, KioskSettings(port=0))
    server = KioskServer(agent)  # type: ignore[arg-type]
    await server.start()
    try:
        await push(agent, offering())
        agent.uplink.connected = False
        session = server.session
        from branchline.agent.kiosk.flows import attract

        attract.show(session)
        assert session.data["phone"] is None
    finally:
        await server.stop()
