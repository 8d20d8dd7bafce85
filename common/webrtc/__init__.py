"""The browser side of a video call's peer connection, shared by the kiosk and the console
pages (``peer.js``, served by both at ``/webrtc/peer.js``; docs/flows/calls.md "Media")."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

PEER_JS = Path(__file__).with_name("peer.js")
PEER_PATH = "/webrtc/peer.js"


async def peer_script(request: web.Request) -> web.FileResponse:
    """``peer.js``: the call's peer connection, panel and controls for both pages."""
    return web.FileResponse(PEER_JS, headers={"Content-Type": "text/javascript"})


def register_peer_script(app: web.Application) -> None:
    """``GET /webrtc/peer.js`` on a page server (the kiosk's or the console's)."""
    app.router.add_get(PEER_PATH, peer_script)
