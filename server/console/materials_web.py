"""A task's material images over plain HTTP: ``GET /tasks/<task_id>/materials/<index>``.

The state names each image by this URL and never carries its bytes (a 4 MiB ID photo inside
every state push while the task is open). The console serves only what this console's
person opened and may see: the task open on this console, a teller's only while they hold
it (a lobby manager's of their branch, as the server allowed), an image only (the type
sniffed from its bytes, never the uploader's word), not kept by the browser nor by the
console: each request reads the bytes from the server (``Dispatch.GetMaterial``), which
audits the read in its database (``material_audit``, who and which), so no console can
serve one unaudited; logged here too (``task_material_viewed``). A material whose bytes the
server's retention deleted is refused ``material_deleted``. Refusals are JSON ``{status,
reason, message, field}`` as the recordings routes answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import grpc
from aiohttp import web

from branchline.common.errors import DomainError, PermissionDenied
from branchline.common.grpc_errors import error_details
from branchline.common.recordings.routes import HTTP_STATUS

if TYPE_CHECKING:
    from branchline.server.console.session import ConsoleSession
    from branchline.server.console.tasks import TaskDesk

ROUTE = "/tasks/{task_id}/materials/{index}"
# A customer's document: not stored by the browser, not read as another type, not shown
# inside another site's page.
IMAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Resource-Policy": "same-origin",
}
# What a browser says of a request its own page made (or the person typed the address).
OWN_PAGE = frozenset({"same-origin", "none"})


def _check_page(request: web.Request) -> None:
    """Asked by this console's page: another site's page that points an ``<img>`` at this
    address (a browser sends no Origin for one, but says where it comes from) is refused."""
    origin = request.headers.get("Origin")
    site = request.headers.get("Sec-Fetch-Site")
    if (origin is not None and urlsplit(origin).netloc != request.host) or (
        site is not None and site not in OWN_PAGE
    ):
        raise PermissionDenied(
            "Origin: a task's materials are shown on this console's own page only",
            rule="same_origin",
        )


def _desk_of(session: ConsoleSession) -> TaskDesk:
    """The person's tasks, once the console has signed in and their role has the screen."""
    if not session.signed_in:
        raise PermissionDenied(
            "session: this console has not signed in yet (the server is not reachable or "
            "refused its certificate)",
            rule="not_signed_in",
        )
    if session.tasks is None or not {"tasks", "lobby"} & set(session.views):
        raise PermissionDenied(
            f"the tasks screen is not open to {session.settings.identity}", rule="role_view"
        )
    return session.tasks


def material_handler(session_of: Any) -> Any:
    async def material(request: web.Request) -> web.Response:
        session: ConsoleSession = session_of(request)
        try:
            _check_page(request)
            data, kind = await _desk_of(session).material_image(
                request.match_info["task_id"], request.match_info["index"]
            )
        except DomainError as exc:
            return web.json_response(exc.as_dict(), status=HTTP_STATUS.get(exc.status, 400))
        except grpc.aio.AioRpcError as exc:  # the server refused the read, or is not there
            refusal = error_details(exc)
            return web.json_response(refusal.as_dict(), status=HTTP_STATUS.get(refusal.status, 502))
        return web.Response(body=data, content_type=kind, headers=IMAGE_HEADERS)

    return material
