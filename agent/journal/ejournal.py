"""Electronic journal: an append-only, hash-chained record of what happened at the terminal.

Entry ``seq`` (1, 2, ...) stores ``at`` (UTC, ISO 8601), ``kind``, ``fields`` (canonical JSON,
every value through ``redact_fields`` first), ``prev_hash`` (the previous entry's hash;
64 zeros for the first) and ``hash``:

    hash = HMAC-SHA256(key, canonical JSON of {"seq", "at", "kind", "fields", "prev"})

where ``fields`` is the stored text itself, so every stored byte is covered. The key is 32
random bytes in ``journal.key`` beside the database (mode 0600, created on first use): a
person who can edit the database but not read the key cannot recompute the chain. The head
row (last seq and hash) is MACed too, so deleting entries at the end is detected; replaying an
old copy of the head row together with the truncation is not (keep the key away from them).

``verify()`` walks the chain and reports the first entry that is missing, modified, inserted
or out of order, and why.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import sqlite3
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .db import Database, JournalError
from .jsoncodec import DataError, canonical, decode_object, encode_fields
from .txjournal import check_name

GENESIS = "0" * 64
KEY_BYTES = 32


class EJournalKeyError(JournalError):
    """The HMAC key file is missing, unreadable or not this journal's."""


@dataclass(frozen=True)
class Entry:
    seq: int
    at: str
    kind: str
    # The stored text; ``fields()`` decodes it (raises CorruptRecord if it was damaged).
    fields_json: str
    prev_hash: str
    hash: str

    def fields(self) -> dict[str, Any]:
        return decode_object(self.fields_json, f"e-journal entry {self.seq} fields")


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    entries: int
    # The first entry found missing or bad (None when ok).
    first_bad_seq: int | None = None
    reason: str = ""


def _iso(epoch: float) -> str:
    return (
        datetime.fromtimestamp(epoch, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    )


def entry_hash(key: bytes, seq: int, at: str, kind: str, fields_json: str, prev: str) -> str:
    record = canonical({"seq": seq, "at": at, "kind": kind, "fields": fields_json, "prev": prev})
    return hmac.new(key, record.encode("utf-8"), hashlib.sha256).hexdigest()


def head_mac(key: bytes, seq: int, last_hash: str) -> str:
    return hmac.new(key, f"head:{seq}:{last_hash}".encode(), hashlib.sha256).hexdigest()


def key_id(key: bytes) -> str:
    """A fingerprint naming the key (it does not reveal it)."""
    return hmac.new(key, b"branchline e-journal key id", hashlib.sha256).hexdigest()[:16]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class EJournal:
    def __init__(self, db: Database, key_path: Path | None = None) -> None:
        self.db = db
        self.key_path = key_path or db.path.with_suffix(".key")
        self._key: bytes | None = None

    # -- key ------------------------------------------------------------------------------

    def _read_key(self) -> bytes | None:
        try:
            key = self.key_path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise EJournalKeyError(
                f"{self.key_path}: cannot read the e-journal key: {exc}"
            ) from None
        if len(key) != KEY_BYTES:
            raise EJournalKeyError(
                f"{self.key_path}: the e-journal key must be {KEY_BYTES} bytes, found {len(key)}"
            )
        return key

    def _create_key(self) -> bytes:
        # Written whole to a temporary file, then linked into place: a crash leaves no half
        # key, and of two racing creators the second reads the first one's key.
        directory = self.key_path.parent
        fd, tmp = tempfile.mkstemp(prefix=".journal-key-", dir=directory)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, os.urandom(KEY_BYTES))
            os.fsync(fd)
            os.close(fd)
            fd = -1
            try:
                os.link(tmp, self.key_path)
            except FileExistsError:
                pass
            _fsync_dir(directory)
        finally:
            if fd >= 0:
                os.close(fd)
            os.unlink(tmp)
        key = self._read_key()
        assert key is not None
        return key

    def _head(self, conn: sqlite3.Connection) -> sqlite3.Row | None:
        row: sqlite3.Row | None = conn.execute(
            "SELECT seq, hash, key_id, mac FROM ejournal_head WHERE id = 1"
        ).fetchone()
        return row

    def _key_for(self, conn: sqlite3.Connection, create: bool) -> bytes | None:
        """This journal's key; created only while the journal is empty."""
        if self._key is not None:
            return self._key
        key = self._read_key()
        head = self._head(conn)
        has_entries = head is not None or conn.execute("SELECT 1 FROM ejournal LIMIT 1").fetchone()
        if key is None:
            if has_entries:
                raise EJournalKeyError(
                    f"{self.key_path}: the e-journal key is missing, so its entries cannot be "
                    "verified or extended (restore the key file)"
                )
            if not create:
                return None
            key = self._create_key()
        if head is not None and not hmac.compare_digest(head["key_id"], key_id(key)):
            raise EJournalKeyError(f"{self.key_path}: this key does not belong to this e-journal")
        self._key = key
        return key

    # -- writes ---------------------------------------------------------------------------

    def append(self, kind: str, fields: Mapping[str, Any] | None = None) -> int:
        """Append one entry (durable on return; joins an open transaction); returns its seq."""
        check_name(kind, "kind")
        fields_json = encode_fields(fields, "fields")
        with self.db.transaction() as conn:
            key = self._key_for(conn, create=True)
            assert key is not None
            head = self._head(conn)
            seq, prev = (1, GENESIS) if head is None else (head["seq"] + 1, head["hash"])
            at = _iso(self.db.now())
            digest = entry_hash(key, seq, at, kind, fields_json, prev)
            conn.execute(
                "INSERT INTO ejournal (seq, at, kind, fields, prev_hash, hash)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (seq, at, kind, fields_json, prev, digest),
            )
            conn.execute(
                "INSERT INTO ejournal_head (id, seq, hash, key_id, mac) VALUES (1, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash,"
                " key_id = excluded.key_id, mac = excluded.mac",
                (seq, digest, key_id(key), head_mac(key, seq, digest)),
            )
        return seq

    # -- reads ----------------------------------------------------------------------------

    def show(self, since: int | None = None, limit: int = 50) -> list[Entry]:
        """Entries from ``since`` on (inclusive), or the last ``limit`` ones; oldest first."""
        if limit < 1:
            raise DataError(f"limit: must be at least 1, got {limit}")
        if since is not None and since < 1:
            raise DataError(f"since: entries are numbered from 1, got {since}")
        with self.db.reading() as conn:
            if since is None:
                rows = conn.execute(
                    "SELECT * FROM (SELECT * FROM ejournal ORDER BY seq DESC LIMIT ?) ORDER BY seq",
                    (limit,),
                ).fetchall()
            else:
                rows = conn.execute(
                    "SELECT * FROM ejournal WHERE seq >= ? ORDER BY seq LIMIT ?", (since, limit)
                ).fetchall()
        return [
            Entry(
                seq=r["seq"],
                at=str(r["at"]),
                kind=str(r["kind"]),
                fields_json=str(r["fields"]),
                prev_hash=str(r["prev_hash"]),
                hash=str(r["hash"]),
            )
            for r in rows
        ]

    def find(self, kind: str, reference: str, limit: int = 20) -> list[Entry]:
        """Entries of ``kind`` whose ``reference`` field is ``reference``, oldest first.

        A scan of the journal: for recovery and diagnosis, not for every transaction."""
        check_name(kind, "kind")
        if limit < 1:
            raise DataError(f"limit: must be at least 1, got {limit}")
        with self.db.reading() as conn:
            rows = conn.execute(
                "SELECT * FROM ejournal WHERE kind = ? AND json_valid(fields)"
                " AND json_extract(fields, '$.reference') = ? ORDER BY seq LIMIT ?",
                (kind, reference, limit),
            ).fetchall()
        return [
            Entry(
                seq=r["seq"],
                at=str(r["at"]),
                kind=str(r["kind"]),
                fields_json=str(r["fields"]),
                prev_hash=str(r["prev_hash"]),
                hash=str(r["hash"]),
            )
            for r in rows
        ]

    def verify(self) -> VerifyReport:
        with self.db.separate_reader() as conn:
            total = int(conn.execute("SELECT COUNT(*) FROM ejournal").fetchone()[0])
            try:
                key = self._key_for(conn, create=False)
            except EJournalKeyError as exc:
                first = conn.execute("SELECT MIN(seq) FROM ejournal").fetchone()[0]
                return VerifyReport(False, total, first or 1, str(exc))
            if key is None:  # nothing written yet
                return VerifyReport(True, 0)
            return self._walk(conn, key, total)

    def _walk(self, conn: sqlite3.Connection, key: bytes, total: int) -> VerifyReport:
        def bad(seq: int, reason: str) -> VerifyReport:
            return VerifyReport(False, total, seq, reason)

        expected, prev = 1, GENESIS
        for row in conn.execute(
            "SELECT seq, at, kind, fields, prev_hash, hash FROM ejournal ORDER BY seq"
        ):
            seq = row["seq"]
            if not isinstance(seq, int) or seq < expected:
                return bad(expected, f"entry numbered {seq!r} is out of sequence (inserted)")
            if seq > expected:
                gone = (
                    f"entry {expected} is"
                    if seq == expected + 1
                    else (f"entries {expected}..{seq - 1} are")
                )
                return bad(expected, f"{gone} missing (deleted)")
            if row["prev_hash"] != prev:
                return bad(
                    seq,
                    f"prev_hash does not match the hash of entry {seq - 1} "
                    "(entry inserted, reordered, or the previous one replaced)",
                )
            stored = [row["at"], row["kind"], row["fields"], row["hash"]]
            if not all(isinstance(v, str) for v in stored):
                return bad(seq, "a column holds a value of the wrong type (entry modified)")
            try:
                decode_object(row["fields"], "fields")
            except JournalError:
                return bad(seq, "fields are not a valid JSON object (entry modified)")
            digest = entry_hash(key, seq, row["at"], row["kind"], row["fields"], prev)
            if not hmac.compare_digest(digest, row["hash"]):
                return bad(seq, "hash does not match the entry's contents (entry modified)")
            prev, expected = row["hash"], expected + 1
        last = expected - 1
        head = self._head(conn)
        if head is None:
            return VerifyReport(True, total) if last == 0 else bad(1, "the head record is missing")
        if not hmac.compare_digest(str(head["mac"]), head_mac(key, head["seq"], head["hash"])):
            return bad(min(last + 1, int(head["seq"] or 1)), "the head record was modified")
        if head["seq"] > last:
            return bad(
                last + 1,
                f"entries {last + 1}..{head['seq']} are missing at the end (truncated)",
            )
        if head["seq"] < last:
            return bad(
                head["seq"] + 1,
                f"entries after {head['seq']} were not appended by the journal (inserted)",
            )
        if head["hash"] != prev:
            return bad(last, "the last entry differs from the head record (entry replaced)")
        return VerifyReport(True, total)
