"""The phone watches the recordings of its finished job (``server/mobile/job_recordings.py``
decides who may): a list, then the seekable WebM through the same streaming as the kiosk's
"my recordings" (``common/recordings/viewing.py``).

- ``GET /api/jobs/{job_id}/recordings``: ``{"recordings": [...]}`` each with its ``url``.
- ``GET /api/jobs/{job_id}/recordings/{sha256}``: the WebM; ``Range: bytes=N-`` gives 206.

Reads only (no CSRF token needed, as ``GET /api/jobs/{job_id}``); rate limited per phone
and per terminal; the server audits every listing and viewing.
"""

from __future__ import annotations

import re

import grpc
from aiohttp import web

from branchline.common.errors import DomainError
from branchline.common.recordings.viewing import range_offset, recording_json, stream_pieces
from branchline.server.mobile_gateway.app import (
    BACKEND_KEY,
    _json_error,
    _limit_phone,
    _limit_terminal,
    _refused,
    _session,
)
from branchline.server.mobile_gateway.backend import refusal, session_request
from branchline.server.mobile_gateway.jobs_api import _call
from branchline.v1 import mobile_pb2 as pb

SHA256 = re.compile(r"[0-9a-f]{64}")


def _job_id(request: web.Request) -> str:
    job_id = request.match_info["job_id"]
    if len(job_id) > 64:
        raise _json_error(400, "invalid", "job_id", "job_id: at most 64 characters")
    return job_id


async def api_recordings(request: web.Request) -> web.Response:
    _limit_phone(request)
    token, terminal_id = _session(request)
    _limit_terminal(request, terminal_id)
    job_id = _job_id(request)
    message = pb.JobRequest(session=session_request(token, terminal_id), job_id=job_id)
    reply = await _call(request, "ListJobRecordings", message)
    return web.json_response(
        {
            "recordings": [
                {**recording_json(r), "url": f"/api/jobs/{job_id}/recordings/{r.sha256}"}
                for r in reply.recordings
            ]
        }
    )


def _refusal_response(exc: grpc.aio.AioRpcError) -> web.StreamResponse:
    raise _refused(refusal(exc))


async def api_recording(request: web.Request) -> web.StreamResponse:
    _limit_phone(request)
    token, terminal_id = _session(request)
    _limit_terminal(request, terminal_id)
    job_id = _job_id(request)
    sha256 = request.match_info["sha256"]
    if not SHA256.fullmatch(sha256):
        raise _json_error(400, "invalid", "sha256", "sha256: 64 lowercase hex digits")
    try:
        offset = range_offset(request)
    except DomainError as exc:
        raise _json_error(400, "invalid", "Range", exc.message) from None
    call = request.app[BACKEND_KEY].stream(
        "FetchJobRecording",
        pb.FetchJobRecordingRequest(
            session=session_request(token, terminal_id),
            job_id=job_id,
            sha256=sha256,
            offset=offset,
        ),
    )
    try:
        return await stream_pieces(request, call, offset, _refusal_response)
    finally:
        call.cancel()


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/jobs/{job_id}/recordings", api_recordings)
    app.router.add_get("/api/jobs/{job_id}/recordings/{sha256}", api_recording)
