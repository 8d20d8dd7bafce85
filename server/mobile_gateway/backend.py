"""The server's Mobile API as the gateway uses it, and its refusals as HTTP answers.

A refusal keeps the error model's reason and field; ``http_status`` maps it: a handle
already used or expired is gone (410), another terminal's or an unknown session forbidden
(403), an unknown or tampered handle not found (404), a busy terminal a conflict (409), a
malformed request 400, the server unreachable 503.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from branchline.common.grpc_errors import error_details
from branchline.v1 import mobile_pb2 as pb
from branchline.v1 import mobile_pb2_grpc as pb_grpc

CALL_TIMEOUT = 5.0
LOGIN_TIMEOUT = 15.0
# A recording streams to the phone for as long as it plays.
STREAM_TIMEOUT = 600.0
GONE = frozenset({"handle_used", "handle_expired"})
_BY_CODE = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 503,  # the gateway's own certificate: not the phone's fault
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
}


@dataclass(frozen=True)
class Refusal(Exception):
    """The server refused (or could not be reached): what the phone is told."""

    status: int
    reason: str
    field: str
    message: str

    def as_json(self) -> dict[str, str]:
        return {"error": self.reason, "field": self.field, "message": self.message}


def refusal(exc: grpc.aio.AioRpcError) -> Refusal:
    details = error_details(exc)
    reason = details.reason or exc.code().name.lower()
    if reason in GONE:
        status = 410
    elif reason == "pairing_ended":
        status = 410
    else:
        status = _BY_CODE.get(exc.code(), 503)
    if status == 503:
        return Refusal(503, "unavailable", "", "the bank cannot be reached; try again shortly")
    return Refusal(status, reason, details.field, exc.details() or reason)


@dataclass(frozen=True)
class BackendSettings:
    target: str
    # mTLS with the gateway's service certificate; None: plaintext (loopback development).
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None


class Backend:
    """One channel to the server, shared by every request of this instance."""

    def __init__(self, settings: BackendSettings) -> None:
        if settings.ca and settings.cert and settings.key:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=settings.ca.read_bytes(),
                private_key=settings.key.read_bytes(),
                certificate_chain=settings.cert.read_bytes(),
            )
            self._channel = grpc.aio.secure_channel(settings.target, credentials)
        else:
            self._channel = grpc.aio.insecure_channel(settings.target)
        self._stub = pb_grpc.MobileStub(self._channel)

    async def close(self) -> None:
        await self._channel.close(None)

    async def open_handle(self, handle: str = "", short_code: str = "") -> pb.OpenedPairing:
        request = pb.OpenHandleRequest(handle=handle, short_code=short_code)
        try:
            return await self._stub.OpenHandle(request, timeout=CALL_TIMEOUT)
        except grpc.aio.AioRpcError as exc:
            raise refusal(exc) from None

    async def pairing(self, token: str, terminal_id: str) -> pb.PhonePairing:
        try:
            return await self._stub.GetPairing(_session(token, terminal_id), timeout=CALL_TIMEOUT)
        except grpc.aio.AioRpcError as exc:
            raise refusal(exc) from None

    async def services(self, token: str, terminal_id: str) -> pb.PhoneServiceList:
        try:
            return await self._stub.GetServices(_session(token, terminal_id), timeout=CALL_TIMEOUT)
        except grpc.aio.AioRpcError as exc:
            raise refusal(exc) from None

    async def watch(
        self, token: str, terminal_id: str
    ) -> AsyncGenerator[pb.PhoneServiceList, None]:
        call = self._stub.WatchServices(_session(token, terminal_id))
        try:
            async for item in call:
                yield item
        except grpc.aio.AioRpcError as exc:
            raise refusal(exc) from None
        finally:
            call.cancel()

    async def cancel(self, token: str, terminal_id: str) -> pb.PhonePairing:
        try:
            return await self._stub.Cancel(_session(token, terminal_id), timeout=CALL_TIMEOUT)
        except grpc.aio.AioRpcError as exc:
            raise refusal(exc) from None

    def stream(self, method: str, request: Any) -> Any:
        """A streaming method (FetchJobRecording): the call, to iterate and cancel."""
        return getattr(self._stub, method)(request, timeout=STREAM_TIMEOUT)

    async def call(self, method: str, request: Any) -> Any:
        """One of the job methods (Login, Quote, SubmitJob, GetJob), refusals as HTTP."""
        # Login hashes with argon2id (memory-hard by design): more time on a busy host.
        timeout = LOGIN_TIMEOUT if method == "Login" else CALL_TIMEOUT
        try:
            return await getattr(self._stub, method)(request, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            raise refusal(exc) from None


def session_request(token: str, terminal_id: str) -> pb.SessionRequest:
    return _session(token, terminal_id)


def _session(token: str, terminal_id: str) -> pb.SessionRequest:
    # Both bounded by the server; cut here so a huge cookie never travels further.
    return pb.SessionRequest(session_token=token[:128], terminal_id=terminal_id[:128])
