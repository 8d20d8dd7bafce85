"""The console page over aiohttp on loopback: static files and one WebSocket per page.

Each page gets the catalogue and the full state on connect, then every change; its actions
go to the session. A page that stops reading is dropped (it reconnects and gets the state).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from branchline.common.web.pages import Send, add_security_headers, same_origin, serve_page
from branchline.common.webrtc import register_peer_script
from branchline.server.console import cheques_web, materials_web
from branchline.server.console.call_media import FRAME_TYPES as CALL_FRAMES
from branchline.server.console.session import ConsoleSession

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; connect-src 'self'; img-src 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}
SESSION_KEY: web.AppKey[ConsoleSession] = web.AppKey("session", ConsoleSession)


def static_dir() -> Path:
    return Path(str(resources.files("branchline.server.console").joinpath("static")))


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def _loopback_host(request: web.Request) -> bool:
    """The Host header names this machine. A page elsewhere that rebinds its DNS name to
    127.0.0.1 (and so passes the same-origin check) still sends its own name here."""
    host = urlsplit(f"//{request.host}").hostname or ""
    return host in LOOPBACK_HOSTS


@web.middleware
async def loopback_only(request: web.Request, handler: Any) -> web.StreamResponse:
    if not _loopback_host(request):
        raise web.HTTPMisdirectedRequest(text="the console answers to a loopback address only")
    response: web.StreamResponse = await handler(request)
    return response


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(static_dir() / "index.html")


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def signature(request: web.Request) -> web.Response:
    """A signature image of the teller's current call, verified against its recorded hash."""
    desk = request.app[SESSION_KEY].calls
    try:
        command_id = int(request.match_info["command_id"])
    except ValueError:
        raise web.HTTPBadRequest(text="command_id: must be a number") from None
    png = desk.signature(command_id) if desk is not None else None
    if png is None:
        raise web.HTTPNotFound(text=f"command_id: no signature shown for command {command_id}")
    return web.Response(body=png, content_type="image/png")


async def websocket(request: web.Request) -> web.WebSocketResponse:
    if not same_origin(request):
        raise web.HTTPForbidden(text="the console page is served to its own origin only")
    session = request.app[SESSION_KEY]

    async def on_frame(send: Send, frame: dict[str, Any]) -> bool:
        await session.handle_frame(send, frame)
        return True

    return await serve_page(
        request,
        session,
        heartbeat=5.0,
        frame_types=CALL_FRAMES,
        on_frame=on_frame,
        refused=lambda exc: {"status": exc.status, "field": exc.field, "reason": exc.reason},
        page_gone=session.page_gone,
    )


def make_app(session: ConsoleSession) -> web.Application:
    app = web.Application(middlewares=[loopback_only])
    app[SESSION_KEY] = session
    app.router.add_get("/", index)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/ws", websocket)
    app.router.add_get("/signature/{command_id}", signature)
    app.router.add_get(
        materials_web.ROUTE, materials_web.material_handler(lambda r: r.app[SESSION_KEY])
    )
    app.router.add_get("/display", cheques_web.display_page)
    app.router.add_get(
        cheques_web.PHOTO_ROUTE, cheques_web.photo_handler(lambda r: r.app[SESSION_KEY])
    )
    app.router.add_post(
        "/cheques/enrol/{purchaser_id}",
        cheques_web.enrol_handler(lambda request: request.app[SESSION_KEY], same_origin),
    )
    app.router.add_static("/static/", static_dir(), append_version=False)
    session.recordings.register(app)
    register_peer_script(app)
    add_security_headers(app, SECURITY_HEADERS)
    return app


class ConsoleServer:
    """The running page server and the session behind it."""

    def __init__(self, session: ConsoleSession) -> None:
        self.session = session
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> str:
        settings = self.session.settings
        self._runner = web.AppRunner(make_app(self.session), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, settings.host, settings.port)
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or ()
        port = sockets[0].getsockname()[1] if sockets else settings.port
        host = f"[{settings.host}]" if ":" in settings.host else settings.host
        self.url = f"http://{host}:{port}/"
        await self.session.start()
        return self.url

    async def stop(self) -> None:
        await self.session.stop()
        if self._runner is not None:
            await self._runner.cleanup()
