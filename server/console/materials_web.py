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

from aiohttp import web

from branchline.common.errors import PermissionDenied
from branchline.server.console.image_route import check_signed_in, serve_image

if TYPE_CHECKING:
    from branchline.server.console.session import ConsoleSession
    from branchline.server.console.tasks import TaskDesk

ROUTE = "/tasks/{task_id}/materials/{index}"


def _desk_of(session: ConsoleSession) -> TaskDesk:
    """The person's tasks, once the console has signed in and their role has the screen."""
    check_signed_in(session.signed_in)
    if session.tasks is None or not {"tasks", "lobby"} & set(session.views):
        raise PermissionDenied(
            f"the tasks screen is not open to {session.settings.identity}", rule="role_view"
        )
    return session.tasks


def material_handler(session_of: Any) -> Any:
    async def material(request: web.Request) -> web.Response:
        session: ConsoleSession = session_of(request)

        async def fetch() -> tuple[bytes, str]:
            return await _desk_of(session).material_image(
                request.match_info["task_id"], request.match_info["index"]
            )

        return await serve_image(request, "a task's materials are", fetch)

    return material
