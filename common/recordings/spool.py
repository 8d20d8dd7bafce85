"""The recording spool: MediaRecorder chunks kept under ``<state>/recordings/`` until the
server has the recording.

Each chunk is a file written whole and fsynced (then its folder) before the page is told
it is kept; ``spool.db`` (SQLite, WAL) indexes chunks and recordings. Closing a recording
joins its chunks (0..n-1, none missing) into one file, writes its SHA-256 into the
terminal's e-journal (kind ``recording``, ``reference`` = the transaction) and leaves it
``closed`` for the uploader; ``uploaded`` ones keep only their index row.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from branchline.common.errors import (
    MAX_ID,
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    check_text,
    echo,
)

# One MediaRecorder timeslice (a second or a few) of kiosk video is far below this.
MAX_CHUNK = 2 * 1024 * 1024
MAX_CHUNKS = 20_000
RECORDING_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
KINDS = ("tube", "call", "cheque")
SOURCES = ("kiosk", "backoffice", "teller")
MEDIA_TYPES = ("video/webm", "video/x-matroska", "video/mp4")
EJOURNAL_KIND = "recording"

SCHEMA = """
CREATE TABLE IF NOT EXISTS recordings (
    recording_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,            -- open, closed, uploaded
    txn_ref TEXT NOT NULL DEFAULT '',
    kind TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT '',
    media_type TEXT NOT NULL DEFAULT '',
    session_token TEXT NOT NULL DEFAULT '',
    sha256 TEXT NOT NULL DEFAULT '',
    size INTEGER NOT NULL DEFAULT 0,
    started_at REAL NOT NULL,
    ended_at REAL,
    uploaded_at REAL,
    declared INTEGER NOT NULL DEFAULT 0,
    touched_at REAL
);
CREATE TABLE IF NOT EXISTS chunks (
    recording_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    PRIMARY KEY (recording_id, idx)
);
"""


@dataclass(frozen=True)
class Closed:
    recording_id: str
    txn_ref: str
    kind: str
    source: str
    media_type: str
    # A credential: never in a repr, a log or a traceback.
    session_token: str = dataclasses.field(repr=False)
    sha256: str
    size: int
    started_at: float
    ended_at: float
    path: Path


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_durably(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def check_recording_id(value: str) -> str:
    check_text("recording_id", value, max_len=MAX_ID)
    if not RECORDING_ID.fullmatch(value):
        raise InvalidArgument(
            "recording_id", f"letters, digits, '-' and '_' only, got {echo(value)}"
        )
    return value


def _check_meta(
    recording_id: str, txn_ref: str, kind: str, source: str, media_type: str, session_token: str
) -> str:
    """Check what names a recording; the media type without its parameters."""
    check_recording_id(recording_id)
    check_text("txn_ref", txn_ref, max_len=MAX_ID)
    check_text("session_token", session_token, max_len=1024, required=False)
    media_type = media_type.split(";")[0].strip()
    for field, value, allowed in (
        ("kind", kind, KINDS),
        ("source", source, SOURCES),
        ("media_type", media_type, MEDIA_TYPES),
    ):
        if value not in allowed:
            raise InvalidArgument(field, f"must be one of {', '.join(allowed)}, got {echo(value)}")
    return media_type


class RecordingSpool:
    def __init__(self, state_dir: Path, ejournal: Any = None) -> None:
        self.root = state_dir / "recordings"
        self.root.mkdir(parents=True, exist_ok=True, mode=0o750)
        # The terminal's e-journal (agent.journal.ejournal.EJournal); resolved lazily so the
        # journal opens when the agent opens it.
        self._ejournal = ejournal
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.root / "spool.db", check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(SCHEMA)
        columns = {r["name"] for r in self._conn.execute("PRAGMA table_info(recordings)")}
        for column, decl in (("declared", "INTEGER NOT NULL DEFAULT 0"), ("touched_at", "REAL")):
            if column not in columns:  # a spool made before these columns existed
                self._conn.execute(f"ALTER TABLE recordings ADD COLUMN {column} {decl}")

    def close_db(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._conn:
            yield self._conn

    def _dir(self, recording_id: str) -> Path:
        return self.root / recording_id

    def file_of(self, recording_id: str) -> Path:
        return self.root / f"{recording_id}.rec"

    def _row(self, conn: sqlite3.Connection, recording_id: str) -> sqlite3.Row | None:
        row: sqlite3.Row | None = conn.execute(
            "SELECT * FROM recordings WHERE recording_id = ?", (recording_id,)
        ).fetchone()
        return row

    # -- chunks -----------------------------------------------------------------------

    def put_chunk(self, recording_id: str, index: int, data: bytes) -> bool:
        """Keep chunk ``index`` (durable on return); False when it was already kept."""
        check_recording_id(recording_id)
        if not 0 <= index < MAX_CHUNKS:
            raise InvalidArgument("index", f"must be 0..{MAX_CHUNKS - 1}, got {index}")
        if not data:
            raise InvalidArgument("chunk", "is empty")
        if len(data) > MAX_CHUNK:
            raise InvalidArgument("chunk", f"is {len(data)} bytes, at most {MAX_CHUNK}")
        digest = hashlib.sha256(data).hexdigest()
        with self._tx() as conn:
            row = self._row(conn, recording_id)
            if row is not None and row["state"] != "open":
                raise FailedPrecondition(
                    f"recording_id: recording {recording_id} is {row['state']}; "
                    "no more chunks are taken",
                    field="recording_id",
                    reason="recording_closed",
                )
            kept = conn.execute(
                "SELECT sha256 FROM chunks WHERE recording_id = ? AND idx = ?",
                (recording_id, index),
            ).fetchone()
            if kept is not None:
                if kept["sha256"] != digest:
                    raise AlreadyExists(
                        f"index: chunk {index} of {recording_id} is already kept with other bytes",
                        field="index",
                    )
                return False
            folder = self._dir(recording_id)
            folder.mkdir(exist_ok=True)
            _write_durably(folder / f"{index:06d}.chunk", data)
            if row is None:
                conn.execute(
                    "INSERT INTO recordings (recording_id, state, started_at)"
                    " VALUES (?, 'open', ?)",
                    (recording_id, time.time()),
                )
            conn.execute(
                "INSERT INTO chunks (recording_id, idx, size, sha256) VALUES (?, ?, ?, ?)",
                (recording_id, index, len(data), digest),
            )
            conn.execute(
                "UPDATE recordings SET touched_at = ? WHERE recording_id = ?",
                (time.time(), recording_id),
            )
        return True

    def declare(
        self,
        recording_id: str,
        txn_ref: str,
        kind: str,
        source: str = "kiosk",
        media_type: str = "video/webm",
        session_token: str = "",
    ) -> None:
        """Name an open recording's transaction up front, so that a recording whose page
        went away (a reload, a crash) can be closed by ``close_abandoned`` with it."""
        media_type = _check_meta(recording_id, txn_ref, kind, source, media_type, session_token)
        now = time.time()
        with self._tx() as conn:
            row = self._row(conn, recording_id)
            if row is not None and row["state"] != "open":
                raise FailedPrecondition(
                    f"recording_id: recording {recording_id} is {row['state']}",
                    field="recording_id",
                    reason="recording_closed",
                )
            if row is None:
                conn.execute(
                    "INSERT INTO recordings (recording_id, state, started_at) VALUES (?, 'open', ?)",
                    (recording_id, now),
                )
            conn.execute(
                "UPDATE recordings SET txn_ref = ?, kind = ?, source = ?, media_type = ?,"
                " session_token = ?, declared = 1, touched_at = ? WHERE recording_id = ?",
                (txn_ref, kind, source, media_type, session_token, now, recording_id),
            )

    def close_abandoned(self, idle_seconds: float) -> list[Closed]:
        """Close every declared recording that has had no chunk for ``idle_seconds`` (its
        page is gone): the chunks up to the first gap are kept — a MediaRecorder WebM cut
        anywhere plays up to the cut. One without any chunk is dropped."""
        cutoff = time.time() - idle_seconds
        with self._tx() as conn:
            rows = conn.execute(
                "SELECT * FROM recordings WHERE state = 'open' AND declared = 1"
                " AND COALESCE(touched_at, started_at) < ?",
                (cutoff,),
            ).fetchall()
            closing = []
            for row in rows:
                rid = row["recording_id"]
                have = [
                    r["idx"]
                    for r in conn.execute(
                        "SELECT idx FROM chunks WHERE recording_id = ? ORDER BY idx", (rid,)
                    )
                ]
                prefix = 0
                while prefix < len(have) and have[prefix] == prefix:
                    prefix += 1
                conn.execute(
                    "DELETE FROM chunks WHERE recording_id = ? AND idx >= ?", (rid, prefix)
                )
                if prefix == 0:
                    conn.execute("DELETE FROM recordings WHERE recording_id = ?", (rid,))
                closing.append((row, prefix))
        closed = []
        for row, prefix in closing:
            folder = self._dir(row["recording_id"])
            for chunk in folder.glob("*.chunk"):
                if int(chunk.stem) >= prefix:
                    chunk.unlink()
            if prefix == 0:
                if folder.is_dir():
                    folder.rmdir()
                continue
            closed.append(
                self.close(
                    row["recording_id"],
                    row["txn_ref"],
                    row["kind"],
                    row["source"],
                    row["media_type"],
                    row["session_token"],
                )
            )
        return closed

    # -- closing ----------------------------------------------------------------------

    def close(
        self,
        recording_id: str,
        txn_ref: str,
        kind: str,
        source: str = "kiosk",
        media_type: str = "video/webm",
        session_token: str = "",
    ) -> Closed:
        """Join the chunks, journal the SHA-256 and leave it for the uploader. Closing a
        closed recording again with the same reference answers the same."""
        media_type = _check_meta(recording_id, txn_ref, kind, source, media_type, session_token)
        with self._tx() as conn:
            row = self._row(conn, recording_id)
            if row is None:
                raise NotFound(f"recording_id: no recording {recording_id}", field="recording_id")
            if not session_token and row["declared"]:
                session_token = row["session_token"]
            if row["state"] != "open":
                if row["txn_ref"] != txn_ref:
                    raise FailedPrecondition(
                        "recording_id: already closed for another transaction",
                        field="txn_ref",
                        reason="recording_closed",
                    )
                return self._closed(row)
            indexes = [
                r["idx"]
                for r in conn.execute(
                    "SELECT idx FROM chunks WHERE recording_id = ? ORDER BY idx", (recording_id,)
                )
            ]
            if not indexes:
                # Declared, then its page went away before a first chunk (an agent restart
                # mid-call): nothing to keep, as close_abandoned drops it.
                conn.execute("DELETE FROM recordings WHERE recording_id = ?", (recording_id,))
            else:
                meta = (txn_ref, kind, source, media_type, session_token)
                row = self._seal(conn, recording_id, indexes, meta)
        if not indexes:  # raised once the transaction kept the delete
            raise FailedPrecondition(
                f"recording_id: recording {recording_id} has no chunk; nothing was recorded",
                field="recording_id",
                reason="recording_empty",
            )
        assert row is not None
        for chunk in self._dir(recording_id).glob("*.chunk"):
            chunk.unlink()
        self._dir(recording_id).rmdir()
        return self._closed(row)

    def _seal(
        self,
        conn: sqlite3.Connection,
        recording_id: str,
        indexes: list[int],
        meta: tuple[str, str, str, str, str],
    ) -> sqlite3.Row | None:
        """Join the chunks, journal the digest and mark the recording closed (in ``conn``'s
        transaction)."""
        txn_ref, kind, source, media_type, session_token = meta
        if indexes != list(range(len(indexes))):
            missing = sorted(set(range(indexes[-1] + 1)) - set(indexes))
            raise FailedPrecondition(
                f"recording_id: chunks {missing[:10]} are missing; send them before closing",
                field="recording_id",
                reason="chunks_missing",
            )
        digest, size = self._join(recording_id, len(indexes))
        if self._ejournal is not None and not self._journaled(txn_ref, recording_id, digest):
            self._ejournal.append(
                EJOURNAL_KIND,
                {
                    "reference": txn_ref,
                    "recording_id": recording_id,
                    "kind": kind,
                    "source": source,
                    "sha256": digest,
                    "size": size,
                },
            )
        conn.execute(
            "UPDATE recordings SET state = 'closed', txn_ref = ?, kind = ?, source = ?,"
            " media_type = ?, session_token = ?, sha256 = ?, size = ?, ended_at = ?"
            " WHERE recording_id = ?",
            (*meta, digest, size, time.time(), recording_id),
        )
        conn.execute("DELETE FROM chunks WHERE recording_id = ?", (recording_id,))
        return self._row(conn, recording_id)

    def _journaled(self, txn_ref: str, recording_id: str, digest: str) -> bool:
        """A close that crashed after its e-journal entry is not journaled twice."""
        return any(
            entry.fields().get("recording_id") == recording_id
            and entry.fields().get("sha256") == digest
            for entry in self._ejournal.find(EJOURNAL_KIND, txn_ref)
        )

    def _join(self, recording_id: str, count: int) -> tuple[str, int]:
        target = self.file_of(recording_id)
        tmp = target.with_name(f".{target.name}.tmp")
        digest = hashlib.sha256()
        size = 0
        with tmp.open("wb") as out:
            for index in range(count):
                data = (self._dir(recording_id) / f"{index:06d}.chunk").read_bytes()
                digest.update(data)
                size += len(data)
                out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
        _fsync_dir(self.root)
        return digest.hexdigest(), size

    def _closed(self, row: sqlite3.Row) -> Closed:
        return Closed(
            recording_id=row["recording_id"],
            txn_ref=row["txn_ref"],
            kind=row["kind"],
            source=row["source"],
            media_type=row["media_type"],
            session_token=row["session_token"],
            sha256=row["sha256"],
            size=row["size"],
            started_at=row["started_at"],
            ended_at=row["ended_at"] or row["started_at"],
            path=self.file_of(row["recording_id"]),
        )

    # -- upload -----------------------------------------------------------------------

    def pending(self) -> list[Closed]:
        """Closed recordings the server does not have yet, oldest first."""
        with self._tx() as conn:
            rows = conn.execute(
                "SELECT * FROM recordings WHERE state = 'closed' ORDER BY ended_at"
            ).fetchall()
        return [self._closed(r) for r in rows]

    def mark_uploaded(self, recording_id: str) -> None:
        with self._tx() as conn:
            conn.execute(
                "UPDATE recordings SET state = 'uploaded', uploaded_at = ?, session_token = ''"
                " WHERE recording_id = ?",
                (time.time(), recording_id),
            )
        self.file_of(recording_id).unlink(missing_ok=True)

    def state_of(self, recording_id: str) -> str:
        with self._tx() as conn:
            row = self._row(conn, recording_id)
        return "" if row is None else str(row["state"])
