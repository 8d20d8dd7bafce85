"""The page's way in: HTTP routes on the kiosk (and later console) app.

- ``POST /recordings/{recording_id}/chunks/{index}``: body = one MediaRecorder chunk
  (``index`` from 0, in order of recording); 201 when kept, 200 when it was kept already.
- ``POST /recordings/{recording_id}/open``: JSON ``{"txn_ref", "kind", "source",
  "media_type"}`` before the first chunk, so that a recording whose page goes away is
  closed by the process after ``ABANDONED_AFTER`` seconds without a chunk (uploader loop).
- ``POST /recordings/{recording_id}/close``: JSON ``{"txn_ref", "kind", "source",
  "media_type"}``; the recording's SHA-256 (journaled) and size. The customer's session
  is added by the agent, never sent by the page.

Refusals are JSON ``{"status", "reason", "message", "field"}`` with the HTTP status of the
error model (400, 404, 409, 413). Requests from another origin are refused.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from aiohttp import web

from branchline.common.errors import DomainError, InvalidArgument, PermissionDenied
from branchline.common.recordings.spool import MAX_CHUNK, RecordingSpool
from branchline.common.web.pages import read_bounded

HTTP_STATUS = {
    "INVALID_ARGUMENT": 400,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "FAILED_PRECONDITION": 409,
    "UNAVAILABLE": 503,
}
MAX_CLOSE_BODY = 4096
RECORDER_JS = Path(__file__).with_name("recorder.js")
RECORDER_PATH = "/recordings/recorder.js"
SPOOL_KEY: web.AppKey[RecordingSpool] = web.AppKey("recording_spool", RecordingSpool)
# The signed-in customer's session token, from the agent (never from the page).
TOKEN_KEY: web.AppKey[Callable[[], str]] = web.AppKey("recording_session", Callable[[], str])  # type: ignore[arg-type]
# Called after a recording is closed (wakes the uploader).
CLOSED_KEY: web.AppKey[Callable[[], None]] = web.AppKey("recording_closed", Callable[[], None])  # type: ignore[arg-type]


def _refusal(exc: DomainError) -> web.Response:
    return web.json_response(exc.as_dict(), status=HTTP_STATUS.get(exc.status, 400))


def _check_origin(request: web.Request) -> None:
    origin = request.headers.get("Origin")
    if origin is not None and urlsplit(origin).netloc != request.host:
        raise PermissionDenied(
            "Origin: recordings are taken from this page only", rule="same_origin"
        )


def _handler(
    fn: Callable[[web.Request], Awaitable[web.Response]],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def wrapped(request: web.Request) -> web.Response:
        try:
            _check_origin(request)
            return await fn(request)
        except DomainError as exc:
            return _refusal(exc)

    return wrapped


def _index(text: str) -> int:
    if not text.isdigit() or len(text) > 6:
        raise InvalidArgument("index", "must be a chunk number from 0")
    return int(text)


async def put_chunk(request: web.Request) -> web.Response:
    spool = request.app[SPOOL_KEY]
    recording_id = request.match_info["recording_id"]
    index = _index(request.match_info["index"])
    if request.content_length is not None and request.content_length > MAX_CHUNK:
        raise InvalidArgument("chunk", f"is {request.content_length} bytes, at most {MAX_CHUNK}")
    data = await read_bounded(request, MAX_CHUNK)
    if len(data) > MAX_CHUNK:
        raise InvalidArgument("chunk", f"is larger than {MAX_CHUNK} bytes")
    kept = await asyncio.to_thread(spool.put_chunk, recording_id, index, data)
    body = {"recording_id": recording_id, "index": index, "kept": kept}
    return web.json_response(body, status=201 if kept else 200)


def _text(body: dict[str, Any], field: str, default: str = "") -> str:
    value = body.get(field, default)
    if not isinstance(value, str):
        raise InvalidArgument(field, "must be text")
    return value


class Meta(NamedTuple):
    txn_ref: str
    kind: str
    source: str
    media_type: str


async def _meta(request: web.Request) -> Meta:
    raw = await read_bounded(request, MAX_CLOSE_BODY)
    if len(raw) > MAX_CLOSE_BODY:
        raise InvalidArgument("body", f"at most {MAX_CLOSE_BODY} bytes")
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise InvalidArgument("body", "is not JSON") from None
    if not isinstance(body, dict):
        raise InvalidArgument("body", "must be a JSON object")
    return Meta(
        _text(body, "txn_ref"),
        _text(body, "kind"),
        _text(body, "source", "kiosk"),
        _text(body, "media_type", "video/webm"),
    )


def _session(request: web.Request) -> str:
    return request.app[TOKEN_KEY]() if TOKEN_KEY in request.app else ""


async def declare(request: web.Request) -> web.Response:
    spool = request.app[SPOOL_KEY]
    recording_id = request.match_info["recording_id"]
    m = await _meta(request)
    await asyncio.to_thread(
        spool.declare, recording_id, m.txn_ref, m.kind, m.source, m.media_type, _session(request)
    )
    return web.json_response({"recording_id": recording_id, "declared": True}, status=201)


async def close(request: web.Request) -> web.Response:
    spool = request.app[SPOOL_KEY]
    m = await _meta(request)
    closed = await asyncio.to_thread(
        spool.close,
        request.match_info["recording_id"],
        m.txn_ref,
        m.kind,
        m.source,
        m.media_type,
        _session(request),
    )
    if CLOSED_KEY in request.app:
        request.app[CLOSED_KEY]()
    return web.json_response(
        {"recording_id": closed.recording_id, "sha256": closed.sha256, "size": closed.size}
    )


async def recorder_script(request: web.Request) -> web.FileResponse:
    """``recorder.js``: the page side, shared by the kiosk and the console."""
    return web.FileResponse(RECORDER_JS, headers={"Content-Type": "text/javascript"})


def register_recorder_script(app: web.Application) -> None:
    """``GET /recordings/recorder.js`` (always served, so a page's modules load even where
    no recordings are kept: posting then fails and the page carries on)."""
    app.router.add_get(RECORDER_PATH, recorder_script)


def register_recording_routes(
    app: web.Application,
    spool: RecordingSpool | None,
    on_closed: Callable[[], None] | None = None,
    session_token: Callable[[], str] | None = None,
) -> None:
    """Add the recording routes to a page's app (the kiosk's, later the console's).

    ``session_token`` gives the signed-in customer's session (kept inside the agent: the
    page never sees it), so the server knows whose recording it is. Without a spool (a
    process that keeps no recordings) nothing is added."""
    if spool is None:
        return
    app[SPOOL_KEY] = spool
    if on_closed is not None:
        app[CLOSED_KEY] = on_closed
    if session_token is not None:
        app[TOKEN_KEY] = session_token
    app.router.add_post(r"/recordings/{recording_id}/chunks/{index}", _handler(put_chunk))
    app.router.add_post(r"/recordings/{recording_id}/open", _handler(declare))
    app.router.add_post(r"/recordings/{recording_id}/close", _handler(close))
