"""The resumable, content-hashed upload of one closed recording, and the uploader task.

Begin names the content (SHA-256, size); the server answers the bytes it already holds
(or that the content is stored already), the rest is streamed from there and Commit has the
server check the hash. Anything that breaks (a partition, a server restart) is retried from
the offset the next Begin answers, so nothing is sent twice into the store.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from branchline.common.logs import log_event
from branchline.common.recordings.spool import Closed, RecordingSpool
from branchline.common.waiting import wait_set
from branchline.v1 import recordings_pb2 as pb
from branchline.v1 import recordings_pb2_grpc as pb_grpc

log = logging.getLogger("branchline.recordings")

PIECE = 256 * 1024
# A recording declared by its page with no chunk for this long is closed by the process:
# the page is gone (a reload, a crash); a MediaRecorder takes a chunk every second or so.
ABANDONED_AFTER = 30.0
# Failures worth retrying later; anything else is a refusal that retrying cannot fix.
RETRY = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.FAILED_PRECONDITION,  # offset moved: Begin again answers the new one
    grpc.StatusCode.NOT_FOUND,  # the upload was finished by another attempt
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
}


def _ts(epoch: float) -> Timestamp:
    ts = Timestamp()
    ts.FromNanoseconds(int(epoch * 1e9))
    return ts


async def upload_one(
    stub: pb_grpc.RecordingsStub,
    rec: Closed,
    metadata: tuple[tuple[str, str], ...] = (),
    piece: int = PIECE,
    timeout: float = 30.0,
) -> pb.CommitUploadReply | None:
    """Upload ``rec``; the commit reply, or None when the server already had it."""
    begun = await stub.BeginUpload(
        pb.BeginUploadRequest(
            sha256=rec.sha256,
            size=rec.size,
            txn_ref=rec.txn_ref,
            kind=rec.kind,
            recording_id=rec.recording_id,
            source=rec.source,
            media_type=rec.media_type,
            started_at=_ts(rec.started_at),
            ended_at=_ts(rec.ended_at),
            session_token=rec.session_token,
        ),
        metadata=metadata,
        timeout=timeout,
    )
    if begun.already_stored:
        return None
    if begun.offset < rec.size:

        async def pieces() -> AsyncIterator[pb.UploadChunkRequest]:
            offset = begun.offset
            with rec.path.open("rb") as f:
                f.seek(offset)
                while data := f.read(piece):
                    yield pb.UploadChunkRequest(upload_id=begun.upload_id, offset=offset, data=data)
                    offset += len(data)

        await stub.UploadChunk(pieces(), metadata=metadata, timeout=max(timeout, rec.size / 1e5))
    reply: pb.CommitUploadReply = await stub.CommitUpload(
        pb.CommitUploadRequest(upload_id=begun.upload_id), metadata=metadata, timeout=timeout * 4
    )
    return reply


class Uploader:
    """Sends every closed recording of the spool to the server, oldest first."""

    def __init__(
        self,
        spool: RecordingSpool,
        channel_factory: Callable[[], grpc.aio.Channel],
        metadata: tuple[tuple[str, str], ...] = (),
        interval: float = 2.0,
        backoff_max: float = 30.0,
        abandoned_after: float = ABANDONED_AFTER,
    ) -> None:
        self.spool = spool
        self._channel_factory = channel_factory
        self._metadata = metadata
        self.interval = interval
        self.backoff_max = backoff_max
        self.abandoned_after = abandoned_after
        self._wake = asyncio.Event()
        # Refused for good (e.g. bytes that no longer match their hash): left for a
        # technician, not retried by this process.
        self.refused: set[str] = set()

    def kick(self) -> None:
        """A recording was closed: look now rather than at the next interval."""
        self._wake.set()

    async def run(self) -> None:
        backoff = self.interval
        while True:
            await self.close_abandoned()
            try:
                async with self._channel_factory() as channel:
                    await self.drain(pb_grpc.RecordingsStub(channel))
                backoff = self.interval
            except grpc.aio.AioRpcError as exc:
                log_event(
                    log,
                    "recording_upload_deferred",
                    logging.WARNING,
                    code=exc.code().name,
                    detail=exc.details() or "",
                )
                backoff = min(self.backoff_max, backoff * 2)
            self._wake.clear()
            await wait_set(self._wake, backoff)

    async def close_abandoned(self) -> int:
        """Close the recordings whose page went away (no chunk for ``abandoned_after``)."""
        try:
            closed = await asyncio.to_thread(self.spool.close_abandoned, self.abandoned_after)
        except Exception as exc:  # a spool problem must not stop the uploads
            log_event(log, "recording_abandon_failed", logging.ERROR, error=repr(exc))
            return 0
        for rec in closed:
            log_event(
                log,
                "recording_abandoned_closed",
                recording_id=rec.recording_id,
                txn_ref=rec.txn_ref,
                size=rec.size,
            )
        return len(closed)

    async def drain(self, stub: Any) -> int:
        """Upload what is pending; the number uploaded. A refusal that retrying cannot
        fix is logged and left for a technician; a retryable failure stops the round."""
        done = 0
        for rec in await asyncio.to_thread(self.spool.pending):
            if rec.recording_id in self.refused:
                continue
            if not rec.path.is_file():
                self.refused.add(rec.recording_id)
                log_event(
                    log, "recording_file_missing", logging.ERROR, recording_id=rec.recording_id
                )
                continue
            try:
                reply = await upload_one(stub, rec, self._metadata)
            except grpc.aio.AioRpcError as exc:
                if exc.code() in RETRY:
                    raise
                self.refused.add(rec.recording_id)
                log_event(
                    log,
                    "recording_upload_refused",
                    logging.ERROR,
                    recording_id=rec.recording_id,
                    code=exc.code().name,
                    detail=exc.details() or "",
                )
                continue
            await asyncio.to_thread(self.spool.mark_uploaded, rec.recording_id)
            log_event(
                log,
                "recording_uploaded",
                recording_id=rec.recording_id,
                txn_ref=rec.txn_ref,
                sha256=rec.sha256,
                already_stored=reply is None,
            )
            done += 1
        return done
