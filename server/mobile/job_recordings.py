"""The recordings of a phone job's transaction, watched on the phone (issue 16).

A tube job that ended ``done`` carries its receipt reference (``BLTX:<terminal>:<txn>``);
the terminal recorded the transaction (``server/recordings/``). The phone asks through the
gateway with its paired session, and sees them only as the customer the job is bound to:

- the job must be this pairing's (another phone's job is not found), done, with a receipt;
- authenticated at the bank: that customer must still be the one signed in on this pairing
  (signing in as someone else on the same phone refuses, ``own_recordings_only``);
- card + PIN at the terminal: the card's customer the terminal bound the job to.

The viewing goes through ``RecordingService.list_for`` / ``open_for`` as a customer viewer,
exactly as "my recordings" at the kiosk: the recording must be that customer's, and every
listing and viewing is audited (actor ``phone <terminal> job <job_id> customer <id>``).

Mixed into ``MobileServicer`` (``_engine``, ``_auth``, ``_clock``, ``_recordings``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import grpc
from sqlalchemy import Engine

from branchline.common.errors import FailedPrecondition, PermissionDenied, Unavailable
from branchline.common.grpc_errors import refusals
from branchline.common.txref import parse_reference
from branchline.server.auth import MOBILE, Authorizer
from branchline.server.mobile import jobs, pairing
from branchline.server.recordings.service import RecordingService, Viewer
from branchline.server.recordings.servicer import pieces, recording_to_pb
from branchline.v1 import mobile_pb2 as pb
from branchline.v1 import recordings_pb2 as rec_pb


def viewer_of(
    engine: Engine, session: pb.SessionRequest, job_id: str, now: datetime
) -> tuple[Viewer, str]:
    """The customer viewer for ``job_id`` on this phone, and the transaction it recorded."""
    paired = pairing.session(
        engine, session.session_token, now, terminal_id=session.terminal_id, renew=True
    )
    job = jobs.get(engine, job_id[:64], paired.pairing_id)
    if job.state != "done" or not job.receipt_reference.startswith("BLTX:"):
        raise FailedPrecondition(
            "job_id: only a finished tube transaction has recordings",
            field="job_id",
            reason="no_recorded_transaction",
        )
    if not job.customer_id:
        raise PermissionDenied("job_id: the job was never bound to a customer", rule="unbound")
    if job.auth == jobs.AUTH_AT_BANK and jobs.logged_in(engine, paired.pairing_id) != (
        job.customer_id
    ):
        raise PermissionDenied(
            "session: sign in at the bank as the customer of this job to watch its recordings",
            rule="own_recordings_only",
            field="session",
        )
    txn_ref = parse_reference(job.receipt_reference).txn_id
    actor = f"phone {paired.terminal_id} job {job.job_id} customer {job.customer_id}"
    return Viewer(actor, job.customer_id), txn_ref


class RecordingMethods:
    _engine: Engine
    _auth: Authorizer
    _clock: Callable[[], datetime]
    _recordings: RecordingService | None

    def _service(self) -> RecordingService:
        if self._recordings is None:
            raise Unavailable("this server keeps no recordings", reason="no_recordings")
        return self._recordings

    @refusals
    async def ListJobRecordings(
        self, request: pb.JobRequest, context: grpc.aio.ServicerContext
    ) -> rec_pb.ListRecordingsReply:
        await self._auth.require(context, MOBILE, "Mobile.ListJobRecordings")
        service = self._service()

        def listed() -> list[Any]:
            viewer, txn_ref = viewer_of(
                self._engine, request.session, request.job_id, self._clock()
            )
            return service.list_for(viewer, txn_ref)

        rows = await asyncio.to_thread(listed)
        return rec_pb.ListRecordingsReply(
            recordings=[recording_to_pb(r, staff=False) for r in rows]
        )

    @refusals
    async def FetchJobRecording(
        self, request: pb.FetchJobRecordingRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[rec_pb.RecordingPiece]:
        await self._auth.require(context, MOBILE, "Mobile.FetchJobRecording")
        service = self._service()

        def opened() -> tuple[Any, Any]:
            viewer, txn_ref = viewer_of(
                self._engine, request.session, request.job_id, self._clock()
            )
            return service.open_for(viewer, request.sha256, txn_ref)

        row, path = await asyncio.to_thread(opened)
        async for piece in pieces(row, path, request.offset):
            yield piece
