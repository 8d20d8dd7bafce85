"""The console's cheque-sale pages over plain HTTP: the branch display (``GET /display``, the
counter screen's mode) and the face-image upload (``POST /cheques/enrol/<purchaser_id>``:
images are larger than a WebSocket frame may be)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from branchline.common.web.pages import read_bounded

if TYPE_CHECKING:
    from branchline.server.console.session import ConsoleSession

MAX_IMAGE = 4 * 1024 * 1024
# The branch display alone shows images from data: URLs (the purchaser's ID card photo in its
# state, display.js); the staff page's policy (web.py) allows none.
DISPLAY_CSP = "default-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'"


async def display_page(request: web.Request) -> web.FileResponse:
    from branchline.server.console.web import static_dir

    return web.FileResponse(
        static_dir() / "display.html", headers={"Content-Security-Policy": DISPLAY_CSP}
    )


def enrol_handler(session_of: Any, same_origin: Any) -> Any:
    async def enrol(request: web.Request) -> web.Response:
        if not same_origin(request):
            raise web.HTTPForbidden(text="the console page is served to its own origin only")
        session: ConsoleSession = session_of(request)
        action = "cheques.enrol"
        if session.cheques is None or "cheques" not in session.views:
            refusal = {
                "status": "PERMISSION_DENIED",
                "field": "",
                "reason": "role_view",
                "message": "the cheques screen is not open to this person",
            }
            session.refuse(action, refusal)
            return web.json_response(refusal, status=403)
        image = await read_bounded(request, MAX_IMAGE)
        answer = await session.handle(
            action,
            {
                "purchaser_id": request.match_info["purchaser_id"],
                "image_bytes": image,
            },
        )
        if answer is not None:
            return web.json_response(answer, status=400)
        return web.json_response({"ok": True})

    return enrol
