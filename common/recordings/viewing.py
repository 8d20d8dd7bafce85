"""Watching recordings through a page's process.

"My recordings" for the customer signed in at a terminal: HTTP routes on the kiosk app that
ask the server as the terminal, with the customer's card + PIN session (kept inside the
agent), so a customer only ever opens their own transactions' recordings:

- ``GET /recordings/mine/{txn_ref}``: JSON list of the transaction's recordings.
- ``GET /recordings/mine/{txn_ref}/{sha256}``: the seekable WebM; ``Range: bytes=N-``
  answers 206 from byte N (how a ``<video>`` element seeks).

Staff in the console (``register_staff_viewing``): ``GET /recordings/view/{txn_ref}`` and
``/recordings/view/{txn_ref}/{sha256}``, asked as the console's person (the server checks
the role and audits every list and fetch).

Refusals are the server's, as JSON ``{status, reason, message, field}``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import grpc
from aiohttp import web

from branchline.common.errors import DomainError, InvalidArgument, PermissionDenied
from branchline.common.grpc_errors import error_details
from branchline.common.recordings.routes import HTTP_STATUS
from branchline.v1 import recordings_pb2 as pb
from branchline.v1 import recordings_pb2_grpc as pb_grpc

# (channel to the server, call metadata): a new channel per request, closed after it.
ServerAccess = Callable[[], tuple[grpc.aio.Channel, tuple[tuple[str, str], ...]]]
SERVER_KEY: web.AppKey[ServerAccess] = web.AppKey("recordings_server", object)  # type: ignore[arg-type]
VIEW_TOKEN_KEY: web.AppKey[Callable[[], str]] = web.AppKey("recordings_viewer", object)  # type: ignore[arg-type]
STAFF_KEY: web.AppKey[bool] = web.AppKey("recordings_staff", bool)
RANGE = re.compile(r"bytes=(\d{1,15})-$")


def _refused(error: grpc.aio.AioRpcError) -> web.Response:
    details = error_details(error)
    body = details.as_dict()
    return web.json_response(body, status=HTTP_STATUS.get(details.status, 502))


def _token(request: web.Request) -> str:
    if STAFF_KEY in request.app:
        return ""
    token = request.app[VIEW_TOKEN_KEY]()
    if not token:
        raise PermissionDenied(
            "session: sign in with card and PIN to watch your recordings",
            rule="sign_in_required",
        )
    return token


def recording_json(r: pb.Recording) -> dict[str, Any]:
    return {
        "sha256": r.sha256,
        "txn_ref": r.txn_ref,
        "kind": r.kind,
        "source": r.source,
        "size": r.size,
        "duration_seconds": r.duration_seconds,
        "media_type": r.media_type,
    }


async def my_recordings(request: web.Request) -> web.Response:
    try:
        token = _token(request)
    except DomainError as exc:
        return web.json_response(exc.as_dict(), status=HTTP_STATUS[exc.status])
    channel, metadata = request.app[SERVER_KEY]()
    async with channel:
        try:
            reply = await pb_grpc.RecordingsStub(channel).ListRecordings(
                pb.ListRecordingsRequest(
                    txn_ref=request.match_info["txn_ref"], session_token=token
                ),
                metadata=metadata,
                timeout=10,
            )
        except grpc.aio.AioRpcError as exc:
            return _refused(exc)
    return web.json_response({"recordings": [recording_json(r) for r in reply.recordings]})


def range_offset(request: web.Request) -> int:
    """The start a ``Range: bytes=N-`` header asks for (0 without one)."""
    header = request.headers.get("Range")
    if header is None:
        return 0
    match = RANGE.match(header.strip())
    if match is None:
        raise InvalidArgument("Range", "only 'bytes=N-' is served")
    return int(match.group(1))


async def my_recording(request: web.Request) -> web.StreamResponse:
    try:
        token = _token(request)
        offset = range_offset(request)
    except DomainError as exc:
        return web.json_response(exc.as_dict(), status=HTTP_STATUS[exc.status])
    channel, metadata = request.app[SERVER_KEY]()
    async with channel:
        call = pb_grpc.RecordingsStub(channel).FetchRecording(
            pb.FetchRecordingRequest(
                sha256=request.match_info["sha256"],
                txn_ref=request.match_info["txn_ref"],
                session_token=token,
                offset=offset,
            ),
            metadata=metadata,
            timeout=600,
        )
        return await stream_pieces(request, call, offset, _refused)


async def stream_pieces(
    request: web.Request,
    call: Any,
    offset: int,
    refused: Callable[[grpc.aio.AioRpcError], web.StreamResponse],
) -> web.StreamResponse:
    """Answer ``request`` with the recording a ``RecordingPiece`` stream carries (200, or 206
    from ``offset``); a refusal before the first piece becomes ``refused(error)``."""
    pieces = call.__aiter__()
    try:
        first = await pieces.__anext__()
    except grpc.aio.AioRpcError as exc:
        return refused(exc)
    except StopAsyncIteration:
        raise web.HTTPBadGateway(text="the server sent no recording") from None
    size = first.recording.size
    response = web.StreamResponse(status=206 if offset else 200)
    response.content_type = first.recording.media_type or "video/webm"
    response.content_length = size - offset
    response.headers["Accept-Ranges"] = "bytes"
    if offset:
        response.headers["Content-Range"] = f"bytes {offset}-{size - 1}/{size}"
    await response.prepare(request)
    await response.write(first.data)
    async for piece in pieces:
        await response.write(piece.data)
    await response.write_eof()
    return response


def register_viewing_routes(
    app: web.Application, server: ServerAccess, session_token: Callable[[], str]
) -> None:
    app[SERVER_KEY] = server
    app[VIEW_TOKEN_KEY] = session_token
    app.router.add_get(r"/recordings/mine/{txn_ref}", my_recordings)
    app.router.add_get(r"/recordings/mine/{txn_ref}/{sha256}", my_recording)


def register_staff_viewing(app: web.Application, server: ServerAccess) -> None:
    """The console's routes: the same answers, asked as the person signed in (no session)."""
    app[SERVER_KEY] = server
    app[STAFF_KEY] = True
    app.router.add_get(r"/recordings/view/{txn_ref}", my_recordings)
    app.router.add_get(r"/recordings/view/{txn_ref}/{sha256}", my_recording)
