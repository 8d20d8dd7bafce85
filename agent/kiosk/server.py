"""The kiosk page over aiohttp on loopback: static files and one WebSocket per page.

Each page gets the catalogue and the full current screen on connect, then every change; its
actions go to the session. Frames to a page queue up in memory and a page that stops reading
is dropped (its browser reconnects and gets the full state again). The bound address is
written to ``kiosk.url`` in the state dir for the tools and tests that look for the page.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from branchline.agent.kiosk import call_media
from branchline.agent.kiosk.flows import phone
from branchline.agent.kiosk.session import KioskSession
from branchline.agent.recordings.terminal import register_terminal_recordings
from branchline.common.logs import log_event
from branchline.common.recordings.routes import register_recorder_script
from branchline.common.web.pages import Send, add_security_headers, same_origin, serve_page
from branchline.common.webrtc import register_peer_script

if TYPE_CHECKING:
    from branchline.agent.daemon import Agent

log = logging.getLogger("branchline.agent.kiosk")

URL_FILE = "kiosk.url"
# Pings to find a page that went away; generous, so a loaded terminal does not drop a live one.
HEARTBEAT = 15.0
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; connect-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}
SESSION_KEY: web.AppKey[KioskSession] = web.AppKey("session", KioskSession)


def static_dir() -> Path:
    return Path(str(resources.files("branchline.agent.kiosk").joinpath("static")))


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(static_dir() / "index.html", headers=SECURITY_HEADERS)


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def websocket(request: web.Request) -> web.WebSocketResponse:
    if not same_origin(request):
        raise web.HTTPForbidden(text="the kiosk page is served to its own origin only")
    session = request.app[SESSION_KEY]

    async def on_frame(send: Send, frame: dict[str, Any]) -> bool:
        if session.call_media is None:
            return False
        await session.call_media.on_frame(send, frame)
        return True

    async def page_gone(send: Send) -> None:
        if session.call_media is not None:
            session.call_media.page_gone(send)

    return await serve_page(
        request,
        session,
        heartbeat=HEARTBEAT,
        frame_types=call_media.FRAME_TYPES,
        on_frame=on_frame,
        refused=lambda exc: {"field": exc.field},
        page_gone=page_gone,
    )


def make_app(session: KioskSession) -> web.Application:
    app = web.Application()
    app[SESSION_KEY] = session
    app.router.add_get("/", index)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/ws", websocket)
    app.router.add_get(phone.QR_PATH, phone.qr_image)
    app.router.add_static("/static/", static_dir(), append_version=False)
    register_recorder_script(app)
    register_peer_script(app)
    register_terminal_recordings(
        app,
        session.agent.recordings,
        lambda: session.customer.token if session.customer is not None else "",
    )
    add_security_headers(app, SECURITY_HEADERS)
    return app


class KioskServer:
    """The running page server and its session loop."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.settings = agent.config.kiosk
        self.session = KioskSession(agent, self.settings)
        phone.attach(self.session)
        call_media.attach(self.session)
        self._runner: web.AppRunner | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self.url = ""

    async def start(self) -> str:
        self._runner = web.AppRunner(make_app(self.session), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or ()
        port = sockets[0].getsockname()[1] if sockets else self.settings.port
        host = f"[{self.settings.host}]" if ":" in self.settings.host else self.settings.host
        self.url = f"http://{host}:{port}/"
        (self.agent.config.terminal.state_dir / URL_FILE).write_text(self.url + "\n")
        self._loop_task = asyncio.ensure_future(self.session.run_forever())
        log_event(log, "kiosk_serving", url=self.url)
        return self.url

    async def stop(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        await self.session.stop()
        if self._runner is not None:
            await self._runner.cleanup()
        with contextlib.suppress(FileNotFoundError):
            (self.agent.config.terminal.state_dir / URL_FILE).unlink()


async def start_kiosk(agent: Agent) -> KioskServer | None:
    """Serve the page when ``[kiosk] enabled``; a port in use is logged, not fatal (the
    terminal's local API and transactions carry on, and the technician sees why)."""
    if not agent.config.kiosk.enabled:
        return None
    server = KioskServer(agent)
    try:
        await server.start()
    except OSError as exc:
        log_event(
            log,
            "kiosk_not_served",
            logging.CRITICAL,
            listen=agent.config.kiosk.listen,
            error=str(exc),
        )
        await server.stop()
        return None
    return server
