"""Recordings as plain functions: begin / append / commit an upload, list and read for a
viewer, legal hold and the retention sweep. Raises the errors of ``common/errors.py``.

Uploads are keyed by content: a second Begin of the same SHA-256 resumes the upload in
progress, and Begin of content already stored answers ``already_stored`` (one copy only).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update

from branchline.common.errors import (
    MAX_ID,
    MAX_TEXT,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    check_text,
    echo,
)
from branchline.common.ids import random_hex
from branchline.common.logs import log_event
from branchline.server.recordings.remux import RemuxError, remux
from branchline.server.recordings.schema import recording_audit, recording_uploads, recordings
from branchline.server.recordings.store import ContentStore
from branchline.server.storage.engine import write_transaction
from branchline.server.tube.schema import tube_transactions

log = logging.getLogger("branchline.server.recordings")

SHA256 = re.compile(r"[0-9a-f]{64}")
KINDS = ("tube", "call", "cheque")
SOURCES = ("kiosk", "backoffice", "teller")
MEDIA_TYPES = ("video/webm", "video/x-matroska", "video/mp4")
# The largest recording accepted (a long call at a few Mbit/s).
MAX_SIZE = 2 * 1024**3
MAX_PIECE = 1024 * 1024


@dataclass(frozen=True)
class UploadMeta:
    sha256: str
    size: int
    txn_ref: str
    kind: str
    recording_id: str
    source: str
    media_type: str
    started_at: datetime | None
    ended_at: datetime | None


@dataclass(frozen=True)
class Begun:
    upload_id: str
    offset: int
    already_stored: bool


@dataclass(frozen=True)
class Committed:
    sha256: str
    stored_now: bool
    duration_seconds: float


@dataclass(frozen=True)
class Viewer:
    """Who watches: staff (``customer_id`` empty) or a customer signed in at a terminal."""

    actor: str
    customer_id: str = ""

    @property
    def is_customer(self) -> bool:
        return bool(self.customer_id)


def check_meta(meta: UploadMeta) -> None:
    if not SHA256.fullmatch(meta.sha256):
        raise InvalidArgument("sha256", "must be 64 lower-case hex digits")
    if not 0 < meta.size <= MAX_SIZE:
        raise InvalidArgument("size", f"must be 1..{MAX_SIZE} bytes, got {meta.size}")
    check_text("txn_ref", meta.txn_ref, max_len=MAX_ID)
    check_text("recording_id", meta.recording_id, max_len=MAX_ID)
    for field, value, allowed in (
        ("kind", meta.kind, KINDS),
        ("source", meta.source, SOURCES),
        ("media_type", meta.media_type.split(";")[0].strip(), MEDIA_TYPES),
    ):
        if value not in allowed:
            raise InvalidArgument(field, f"must be one of {', '.join(allowed)}, got {echo(value)}")


def check_sha(field: str, value: str) -> str:
    if not SHA256.fullmatch(value):
        raise InvalidArgument(field, f"must be 64 lower-case hex digits, got {echo(value)}")
    return value


class RecordingService:
    def __init__(
        self,
        engine: Engine,
        store: ContentStore,
        retention: timedelta,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.engine = engine
        self.store = store
        self.retention = retention
        self.clock = clock

    # -- upload -----------------------------------------------------------------------

    def owner_of(self, meta: UploadMeta, session_customer: str) -> str:
        """The customer who may watch it: the tube transaction's own, else the session's."""
        if meta.kind == "tube":
            with self.engine.connect() as conn:
                found = conn.execute(
                    select(tube_transactions.c.customer_id).where(
                        tube_transactions.c.txn_id == meta.txn_ref
                    )
                ).scalar()
            if found:
                return str(found)
        return session_customer

    def begin(self, meta: UploadMeta, terminal_id: str, customer_id: str) -> Begun:
        check_meta(meta)
        with write_transaction(self.engine) as conn:
            stored = conn.execute(
                select(recordings.c.sha256).where(recordings.c.sha256 == meta.sha256)
            ).scalar()
            if stored is not None and self.store.has(meta.sha256):
                return Begun("", meta.size, True)
            row = conn.execute(
                select(recording_uploads).where(recording_uploads.c.sha256 == meta.sha256)
            ).first()
            if row is not None:
                if row.size != meta.size:
                    raise InvalidArgument(
                        "size", f"an upload of this content declared {row.size} bytes"
                    )
                upload_id = str(row.upload_id)
            else:
                upload_id = random_hex()
                conn.execute(
                    insert(recording_uploads).values(
                        upload_id=upload_id,
                        sha256=meta.sha256,
                        size=meta.size,
                        txn_ref=meta.txn_ref,
                        kind=meta.kind,
                        recording_id=meta.recording_id,
                        source=meta.source,
                        terminal_id=terminal_id,
                        customer_id=customer_id,
                        media_type=meta.media_type.split(";")[0].strip(),
                        started_at=meta.started_at,
                        ended_at=meta.ended_at,
                        created_at=self.clock(),
                    )
                )
        return Begun(upload_id, self.store.offset(upload_id), False)

    def _upload(self, upload_id: str) -> Any:
        check_text("upload_id", upload_id, max_len=MAX_ID)
        with self.engine.connect() as conn:
            row = conn.execute(
                select(recording_uploads).where(recording_uploads.c.upload_id == upload_id)
            ).first()
        if row is None:
            raise NotFound(f"upload_id: no upload {echo(upload_id)} in progress", field="upload_id")
        return row

    def append(self, upload_id: str, offset: int, data: bytes) -> int:
        row = self._upload(upload_id)
        if len(data) > MAX_PIECE:
            raise InvalidArgument("data", f"a piece is at most {MAX_PIECE} bytes")
        if offset + len(data) > row.size:
            raise InvalidArgument(
                "data", f"the piece ends at {offset + len(data)}, past the size {row.size}"
            )
        return self.store.append(upload_id, offset, data)

    def commit(self, upload_id: str) -> Committed:
        row = self._upload(upload_id)
        held = self.store.offset(upload_id)
        if held != row.size:
            raise FailedPrecondition(
                f"upload_id: holds {held} of {row.size} bytes; send the rest first",
                field="upload_id",
                reason="upload_incomplete",
                metadata={"held": str(held)},
            )
        digest = self.store.digest_part(upload_id)
        if digest != row.sha256:
            self.store.drop_part(upload_id)
            with write_transaction(self.engine) as conn:
                conn.execute(
                    delete(recording_uploads).where(recording_uploads.c.upload_id == upload_id)
                )
            raise InvalidArgument(
                "sha256",
                "the uploaded bytes do not match the declared SHA-256; upload again",
                reason="hash_mismatch",
            )
        part = self.store.part_of(upload_id)
        seekable = part.with_suffix(".seekable")
        try:
            duration = remux(part, seekable, row.media_type)
        except RemuxError as exc:
            # Kept as recorded: a damaged tail must not lose what was recorded before it.
            log_event(
                log, "recording_not_remuxed", logging.WARNING, sha256=row.sha256, error=str(exc)
            )
            seekable.unlink(missing_ok=True)
            duration = 0.0
        else:
            part.unlink()
            part = seekable
        return self._stored(row, part, duration)

    def _stored(self, row: Any, part: Path, duration: float) -> Committed:
        with write_transaction(self.engine) as conn:
            existed = conn.execute(
                select(recordings.c.sha256).where(recordings.c.sha256 == row.sha256)
            ).scalar()
            self.store.place(part, row.sha256)
            if existed is None:
                conn.execute(
                    insert(recordings).values(
                        sha256=row.sha256,
                        txn_ref=row.txn_ref,
                        kind=row.kind,
                        recording_id=row.recording_id,
                        source=row.source,
                        terminal_id=row.terminal_id,
                        customer_id=row.customer_id,
                        media_type=row.media_type,
                        size=self.store.path_of(row.sha256).stat().st_size,
                        duration_seconds=duration,
                        started_at=row.started_at,
                        ended_at=row.ended_at,
                        stored_at=self.clock(),
                        legal_hold=False,
                        hold_reason="",
                    )
                )
                self._audit(
                    conn, f"terminal {row.terminal_id}", "stored", row.sha256, row.txn_ref, ""
                )
            conn.execute(
                delete(recording_uploads).where(recording_uploads.c.upload_id == row.upload_id)
            )
        log_event(log, "recording_stored", sha256=row.sha256, txn_ref=row.txn_ref, seconds=duration)
        return Committed(row.sha256, existed is None, duration)

    # -- viewing ----------------------------------------------------------------------

    def _audit(
        self, conn: Any, actor: str, action: str, sha256: str, txn_ref: str, detail: str
    ) -> None:
        conn.execute(
            insert(recording_audit).values(
                at=self.clock(),
                actor=actor[:200],
                action=action,
                sha256=sha256,
                txn_ref=txn_ref,
                detail=detail[:MAX_TEXT],
            )
        )

    def _allowed(self, viewer: Viewer, row: Any) -> None:
        if viewer.is_customer and row.customer_id != viewer.customer_id:
            raise PermissionDenied(
                "txn_ref: this recording belongs to another customer's transaction",
                rule="own_recordings_only",
                field="txn_ref",
            )

    def list_for(self, viewer: Viewer, txn_ref: str) -> list[Any]:
        check_text("txn_ref", txn_ref, max_len=MAX_ID)
        with write_transaction(self.engine) as conn:
            rows = conn.execute(
                select(recordings)
                .where(recordings.c.txn_ref == txn_ref)
                .order_by(recordings.c.stored_at)
            ).all()
            if not rows:
                raise NotFound(f"txn_ref: no recordings of {echo(txn_ref)}", field="txn_ref")
            for row in rows:
                self._allowed(viewer, row)
            for row in rows:
                self._audit(conn, viewer.actor, "listed", row.sha256, txn_ref, "")
        return list(rows)

    def open_for(self, viewer: Viewer, sha256: str, txn_ref: str) -> tuple[Any, Path]:
        """The recording and its file, for ``viewer``; the viewing is audited."""
        check_sha("sha256", sha256)
        check_text("txn_ref", txn_ref, max_len=MAX_ID)
        with write_transaction(self.engine) as conn:
            row = conn.execute(select(recordings).where(recordings.c.sha256 == sha256)).first()
            if row is None or row.txn_ref != txn_ref:
                raise NotFound(
                    f"sha256: no recording {sha256[:12]}... of {echo(txn_ref)}", field="sha256"
                )
            self._allowed(viewer, row)
            self._audit(conn, viewer.actor, "viewed", sha256, txn_ref, "")
        return row, self.store.path_of(sha256)

    def audit_of(self, sha256: str) -> list[Any]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(recording_audit)
                    .where(recording_audit.c.sha256 == sha256)
                    .order_by(recording_audit.c.audit_id)
                ).all()
            )

    # -- retention --------------------------------------------------------------------

    def set_hold(self, actor: str, sha256: str, hold: bool, reason: str) -> Any:
        """Set (``hold``) or lift a legal hold; both need a reason, kept in the audit."""
        check_sha("sha256", sha256)
        reason = check_text("reason", reason.strip(), max_len=MAX_TEXT)
        with write_transaction(self.engine) as conn:
            done = conn.execute(
                update(recordings)
                .where(recordings.c.sha256 == sha256)
                .values(legal_hold=hold, hold_reason=reason if hold else "")
            ).rowcount
            if not done:
                raise NotFound(f"sha256: no recording {sha256[:12]}...", field="sha256")
            row = conn.execute(select(recordings).where(recordings.c.sha256 == sha256)).one()
            self._audit(conn, actor, "hold" if hold else "release", sha256, row.txn_ref, reason)
        return row

    def _kept_audited(self, conn: Any, sha256: str) -> bool:
        """Whether retention already said it keeps this recording since its latest hold."""
        last = conn.execute(
            select(recording_audit.c.action)
            .where(
                recording_audit.c.sha256 == sha256,
                recording_audit.c.action.in_(("hold", "kept")),
            )
            .order_by(recording_audit.c.audit_id.desc())
            .limit(1)
        ).scalar()
        return last == "kept"

    def sweep(self) -> tuple[list[str], int]:
        """Delete recordings stored longer ago than the retention, except those on hold;
        a held one past retention gets one audit entry ``kept`` per hold (not one an hour)."""
        cutoff = self.clock() - self.retention
        deleted: list[str] = []
        with write_transaction(self.engine) as conn:
            old = conn.execute(select(recordings).where(recordings.c.stored_at < cutoff)).all()
            held = sum(1 for row in old if row.legal_hold)
            for row in old:
                if row.legal_hold:
                    if not self._kept_audited(conn, row.sha256):
                        detail = f"past retention ({self.retention.days} days), on legal hold: "
                        self._audit(
                            conn, "retention", "kept", row.sha256, row.txn_ref,
                            detail + row.hold_reason,
                        )  # fmt: skip
                    continue
                self.store.delete(row.sha256)
                conn.execute(delete(recordings).where(recordings.c.sha256 == row.sha256))
                detail = f"stored {row.stored_at.isoformat()}, retention {self.retention.days} days"
                self._audit(conn, "retention", "deleted", row.sha256, row.txn_ref, detail)
                deleted.append(row.sha256)
        if deleted or held:
            log_event(log, "recordings_retention", deleted=len(deleted), kept_on_hold=held)
        return deleted, held


async def sweep_forever(service: RecordingService, interval: float) -> None:
    while True:
        try:
            await asyncio.to_thread(service.sweep)
        except Exception:  # the next round tries again; one bad row must not stop retention
            log.exception("retention sweep failed")
        await asyncio.sleep(interval)
