"""The console's cheque-sale pages over plain HTTP: the branch display (``GET /display``, the
counter screen's mode), the ID card photo it shows (``GET /display/photos/<purchase_id>``)
and the face-image upload (``POST /cheques/enrol/<purchaser_id>``: images are larger than a
WebSocket frame may be).

The photo is served as a task's materials are (image_route.py): the state names it by its
URL, never carries its bytes; only to this console's own page, while the purchase is on its
display (the server checks again and audits each photo it hands out), typed by its bytes,
not kept by the browser; refusals in JSON naming what was wrong.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from branchline.common.errors import PermissionDenied
from branchline.common.web.pages import read_bounded
from branchline.server.console.image_route import check_signed_in, serve_image

if TYPE_CHECKING:
    from branchline.server.console.cheques import ChequeDesk
    from branchline.server.console.session import ConsoleSession

MAX_IMAGE = 4 * 1024 * 1024
PHOTO_ROUTE = "/display/photos/{purchase_id}"
# As the staff page's policy (web.py): images from this console's routes only.
DISPLAY_CSP = "default-src 'self'; connect-src 'self'; img-src 'self'; frame-ancestors 'none'"


async def display_page(request: web.Request) -> web.FileResponse:
    from branchline.server.console.web import static_dir

    return web.FileResponse(
        static_dir() / "display.html", headers={"Content-Security-Policy": DISPLAY_CSP}
    )


def _desk_of(session: ConsoleSession) -> ChequeDesk:
    """The display's sale data, once the console has signed in and the role has the screen."""
    check_signed_in(session.signed_in)
    if session.cheques is None or "cheques" not in session.views:
        raise PermissionDenied(
            f"the branch display is not open to {session.settings.identity}", rule="role_view"
        )
    return session.cheques


def photo_handler(session_of: Any) -> Any:
    async def photo(request: web.Request) -> web.Response:
        session: ConsoleSession = session_of(request)

        async def fetch() -> tuple[bytes, str]:
            return await _desk_of(session).photo(request.match_info["purchase_id"])

        return await serve_image(request, "the branch display's photos are", fetch)

    return photo


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
