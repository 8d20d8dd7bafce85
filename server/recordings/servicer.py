"""``Recordings``: the gRPC service, thin over ``RecordingService``.

Terminals upload as themselves (the principal from their certificate); viewing is for a
customer at a terminal (the card + PIN session names the customer) or for staff, and every
viewing is audited by the service.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc

from branchline.common.errors import DomainError, FailedPrecondition, InvalidArgument
from branchline.common.grpc_errors import refusals
from branchline.server.auth import LOBBY, OPERATOR, TELLER, TERMINAL, Authorizer, Principal
from branchline.server.convert import timestamp
from branchline.server.recordings.service import RecordingService, UploadMeta, Viewer
from branchline.v1 import recordings_pb2 as pb
from branchline.v1 import recordings_pb2_grpc as pb_grpc

SERVICE_NAMES = (pb.DESCRIPTOR.services_by_name["Recordings"].full_name,)
UPLOADERS = (TERMINAL, TELLER)
VIEWERS = (TERMINAL, TELLER, LOBBY, OPERATOR)
PIECE = 256 * 1024


def recording_to_pb(row: Any, staff: bool = True) -> pb.Recording:
    """``staff`` False (a customer at a terminal): without the hold's reason."""
    return pb.Recording(
        sha256=row.sha256,
        txn_ref=row.txn_ref,
        kind=row.kind,
        recording_id=row.recording_id,
        source=row.source,
        terminal_id=row.terminal_id,
        size=row.size,
        duration_seconds=row.duration_seconds,
        legal_hold=row.legal_hold,
        stored_at=timestamp(row.stored_at),
        media_type=row.media_type,
        hold_reason=row.hold_reason if staff and row.legal_hold else "",
    )


async def pieces(
    row: Any, path: Path, offset: int, staff: bool = False
) -> AsyncIterator[pb.RecordingPiece]:
    """The stored file from ``offset`` in pieces; the first carries the recording (with what
    only staff see when ``staff``)."""
    if offset > row.size:
        raise InvalidArgument("offset", f"past the end ({row.size} bytes)")
    first = True
    with path.open("rb") as f:
        f.seek(offset)
        while True:
            data = await asyncio.to_thread(f.read, PIECE)
            if not data and not first:
                return
            piece = pb.RecordingPiece(offset=offset, data=data)
            if first:
                piece.recording.CopyFrom(recording_to_pb(row, staff))
                first = False
            yield piece
            offset += len(data)
            if not data:
                return


def _time(ts: Any, present: bool) -> datetime | None:
    return ts.ToDatetime(tzinfo=UTC) if present else None


class RecordingsServicer(pb_grpc.RecordingsServicer):
    def __init__(self, service: RecordingService, auth: Authorizer, sessions: Any) -> None:
        self._service = service
        self._auth = auth
        # CustomerSessions of the PIN capability (None without an HSM: no customer viewing).
        self._sessions = sessions

    def _customer(self, who: Principal, token: str) -> str:
        if self._sessions is None:
            raise FailedPrecondition(
                "session_token: customer sessions need PIN verification (--hsm)",
                field="session_token",
                reason="no_sessions",
            )
        return str(self._sessions.check(token, who.name, datetime.now(UTC)).customer_id)

    def _viewer(self, who: Principal, token: str) -> Viewer:
        if who.role != TERMINAL:
            return Viewer(str(who))
        customer = self._customer(who, token)
        return Viewer(f"{who} customer {customer}", customer)

    @refusals
    async def BeginUpload(
        self, request: pb.BeginUploadRequest, context: grpc.aio.ServicerContext
    ) -> pb.BeginUploadReply:
        who = await self._auth.identify(context, UPLOADERS, "Recordings.BeginUpload")
        meta = UploadMeta(
            sha256=request.sha256,
            size=request.size,
            txn_ref=request.txn_ref,
            kind=request.kind,
            recording_id=request.recording_id,
            source=request.source,
            media_type=request.media_type or "video/webm",
            started_at=_time(request.started_at, request.HasField("started_at")),
            ended_at=_time(request.ended_at, request.HasField("ended_at")),
        )
        session_customer = ""
        if request.session_token and who.role == TERMINAL:
            # An expired or refused session leaves the recording to staff only.
            with contextlib.suppress(DomainError):
                session_customer = self._customer(who, request.session_token)
        owner = await asyncio.to_thread(self._service.owner_of, meta, session_customer)
        begun = await asyncio.to_thread(self._service.begin, meta, who.name, owner)
        return pb.BeginUploadReply(
            upload_id=begun.upload_id, offset=begun.offset, already_stored=begun.already_stored
        )

    @refusals
    async def UploadChunk(
        self,
        request_iterator: AsyncIterator[pb.UploadChunkRequest],
        context: grpc.aio.ServicerContext,
    ) -> pb.UploadChunkReply:
        await self._auth.identify(context, UPLOADERS, "Recordings.UploadChunk")
        held = 0
        async for piece in request_iterator:
            held = await asyncio.to_thread(
                self._service.append, piece.upload_id, piece.offset, piece.data
            )
        return pb.UploadChunkReply(offset=held)

    @refusals
    async def CommitUpload(
        self, request: pb.CommitUploadRequest, context: grpc.aio.ServicerContext
    ) -> pb.CommitUploadReply:
        await self._auth.identify(context, UPLOADERS, "Recordings.CommitUpload")
        done = await asyncio.to_thread(self._service.commit, request.upload_id)
        return pb.CommitUploadReply(
            sha256=done.sha256, stored_now=done.stored_now, duration_seconds=done.duration_seconds
        )

    @refusals
    async def ListRecordings(
        self, request: pb.ListRecordingsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListRecordingsReply:
        who = await self._auth.identify(context, VIEWERS, "Recordings.ListRecordings")
        viewer = self._viewer(who, request.session_token)
        rows = await asyncio.to_thread(self._service.list_for, viewer, request.txn_ref)
        staff = not viewer.is_customer
        return pb.ListRecordingsReply(recordings=[recording_to_pb(r, staff) for r in rows])

    @refusals
    async def FetchRecording(
        self, request: pb.FetchRecordingRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.RecordingPiece]:
        who = await self._auth.identify(context, VIEWERS, "Recordings.FetchRecording")
        viewer = self._viewer(who, request.session_token)
        row, path = await asyncio.to_thread(
            self._service.open_for, viewer, request.sha256, request.txn_ref
        )
        async for piece in pieces(row, path, request.offset, staff=not viewer.is_customer):
            yield piece

    @refusals
    async def SetLegalHold(
        self, request: pb.LegalHoldRequest, context: grpc.aio.ServicerContext
    ) -> pb.LegalHoldReply:
        who = await self._auth.identify(context, (LOBBY, OPERATOR), "Recordings.SetLegalHold")
        row = await asyncio.to_thread(
            self._service.set_hold, str(who), request.sha256, request.hold, request.reason
        )
        return pb.LegalHoldReply(recording=recording_to_pb(row))

    @refusals
    async def SweepRetention(
        self, request: pb.SweepRequest, context: grpc.aio.ServicerContext
    ) -> pb.SweepReply:
        await self._auth.identify(context, (OPERATOR,), "Recordings.SweepRetention")
        deleted, held = await asyncio.to_thread(self._service.sweep)
        return pb.SweepReply(deleted=deleted, kept_on_hold=held)
