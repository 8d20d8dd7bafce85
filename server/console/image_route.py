"""Serving a customer's image from a console route (a task's material, materials_web.py; the
branch display's ID card photo, cheques_web.py) rather than as a data: URL in the state.

What they share: the image's type sniffed from its bytes (never the uploader's word;
``common/image_types.py``, which the server uses for a task's materials too), the
headers that keep it out of the browser's cache, other types and other sites' pages, the
check that this console's own page asked, and refusals as JSON ``{status, reason, message,
field}`` (as the recordings routes answer) whether the console or the server refused.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import grpc
from aiohttp import web

from branchline.common.errors import DomainError, PermissionDenied
from branchline.common.grpc_errors import error_details
from branchline.common.image_types import image_type
from branchline.common.recordings.routes import HTTP_STATUS

# A customer's document: not stored by the browser, not read as another type, not shown
# inside another site's page.
IMAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Resource-Policy": "same-origin",
}
__all__ = [
    "IMAGE_HEADERS",
    "check_page",
    "check_signed_in",
    "image_type",
    "refusal",
    "serve_image",
]

# What a browser says of a request its own page made (or the person typed the address).
OWN_PAGE = frozenset({"same-origin", "none"})
# The image's bytes and their sniffed type; raises DomainError or grpc.aio.AioRpcError.
Fetch = Callable[[], Awaitable[tuple[bytes, str]]]


def check_signed_in(signed_in: bool) -> None:
    """Refused until this console has signed in to the server (nothing to serve yet)."""
    if not signed_in:
        raise PermissionDenied(
            "session: this console has not signed in yet (the server is not reachable or "
            "refused its certificate)",
            rule="not_signed_in",
        )


def check_page(request: web.Request, what: str) -> None:
    """Asked by this console's page: another site's page that points an ``<img>`` at this
    address (a browser sends no Origin for one, but says where it comes from) is refused."""
    origin = request.headers.get("Origin")
    site = request.headers.get("Sec-Fetch-Site")
    if (origin is not None and urlsplit(origin).netloc != request.host) or (
        site is not None and site not in OWN_PAGE
    ):
        raise PermissionDenied(
            f"Origin: {what} shown on this console's own page only", rule="same_origin"
        )


def refusal(exc: DomainError | grpc.aio.AioRpcError) -> web.Response:
    """The refusal as JSON with its HTTP status: the console's own, or the server's."""
    if isinstance(exc, DomainError):
        return web.json_response(exc.as_dict(), status=HTTP_STATUS.get(exc.status, 400))
    details = error_details(exc)
    # A status the console has no word for (the server failed, or refused the console): 502.
    return web.json_response(details.as_dict(), status=HTTP_STATUS.get(details.status, 502))


async def serve_image(request: web.Request, what: str, fetch: Fetch) -> web.Response:
    """The image ``fetch`` finds, to this console's own page; any refusal as JSON."""
    try:
        check_page(request, what)
        data, kind = await fetch()
    except (DomainError, grpc.aio.AioRpcError) as exc:
        return refusal(exc)
    return web.Response(body=data, content_type=kind, headers=IMAGE_HEADERS)
