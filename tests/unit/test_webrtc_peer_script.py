"""The call pages' shared peer-connection module (``common/webrtc/peer.js``) is served as a
JavaScript module at ``/webrtc/peer.js`` (the kiosk's and the console's page servers register
it; the browser tests in tests/browser/test_call_media.py run it)."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from branchline.common.webrtc import PEER_PATH, register_peer_script


@pytest.mark.asyncio
async def test_the_peer_script_is_served_as_a_module() -> None:
    app = web.Application()
    register_peer_script(app)
    page = TestServer(app, host="127.0.0.1")
    await page.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(str(page.make_url(PEER_PATH))) as r:
                assert r.status == 200 and "javascript" in r.headers["Content-Type"]
                assert "export class PeerCall" in await r.text()
            async with http.get(str(page.make_url("/webrtc/other.js"))) as r:
                assert r.status == 404
    finally:
        await page.close()
