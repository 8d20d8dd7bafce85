"""Durable outbox of messages to the server, each with an idempotency key.

The key is ``<terminal id>:<seq>``; ``seq`` comes from a counter bumped in the same database
transaction as the insert, so sequences are gapless and never reused, even after a crash.
``enqueue_in`` takes an open connection so that a journal step and its message commit together.

Sending and retrying are the caller's: send ``pending()`` in order, ``mark_attempt`` on a
failure, ``mark_acknowledged`` with the server's answer. Repeats are safe — the server answers
a repeated key with its first answer, and the outbox keeps the first answer it was given.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from .db import Database, JournalError
from .jsoncodec import DataError
from .txjournal import UnknownTransaction, check_name

COUNTER = "outbox"
MAX_PAYLOAD = 4 * 1024 * 1024


class UnknownMessage(JournalError, LookupError):
    pass


def idempotency_key(terminal_id: str, seq: int) -> str:
    return f"{terminal_id}:{seq}"


@dataclass(frozen=True)
class OutboxMessage:
    seq: int
    key: str
    kind: str
    payload: bytes
    txn_id: str | None
    created_at: float
    attempts: int
    last_error: str
    acked_at: float | None
    response: bytes | None

    def age(self, now: float) -> float:
        return max(0.0, now - self.created_at)


@dataclass(frozen=True)
class OutboxStats:
    pending: int
    # Seconds the oldest pending message has waited; 0 when none waits.
    oldest_age_seconds: float
    acknowledged: int
    last_seq: int


def _message(row: sqlite3.Row) -> OutboxMessage:
    return OutboxMessage(
        seq=row["seq"],
        key=row["key"],
        kind=row["kind"],
        payload=bytes(row["payload"]),
        txn_id=row["txn_id"],
        created_at=row["created_at"],
        attempts=row["attempts"],
        last_error=row["last_error"],
        acked_at=row["acked_at"],
        response=None if row["response"] is None else bytes(row["response"]),
    )


class Outbox:
    def __init__(self, db: Database, terminal_id: str) -> None:
        self.db = db
        self.terminal_id = terminal_id

    def enqueue_in(
        self, conn: sqlite3.Connection, kind: str, payload: bytes, *, txn_id: str | None = None
    ) -> tuple[int, str]:
        """Queue inside a transaction the caller holds open; returns ``(seq, key)``."""
        self.db.require_transaction(conn)
        check_name(kind, "kind")
        if not isinstance(payload, bytes | bytearray | memoryview):
            raise DataError(f"payload: must be bytes, got {type(payload).__name__}")
        payload = bytes(payload)
        if len(payload) > MAX_PAYLOAD:
            raise DataError(f"payload: {len(payload)} bytes is over {MAX_PAYLOAD}")
        if (
            txn_id is not None
            and conn.execute("SELECT 1 FROM txn WHERE id = ?", (txn_id,)).fetchone() is None
        ):
            raise UnknownTransaction(f"txn_id: no transaction {txn_id!r}")
        seq = int(
            conn.execute(
                "INSERT INTO counters (name, value) VALUES (?, 1)"
                " ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value",
                (COUNTER,),
            ).fetchone()[0]
        )
        key = idempotency_key(self.terminal_id, seq)
        conn.execute(
            "INSERT INTO outbox (seq, key, kind, payload, txn_id, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (seq, key, kind, payload, txn_id, self.db.now()),
        )
        return seq, key

    def enqueue(self, kind: str, payload: bytes, *, txn_id: str | None = None) -> tuple[int, str]:
        """Queue a message (durable on return); returns ``(seq, key)``."""
        with self.db.transaction() as conn:
            return self.enqueue_in(conn, kind, payload, txn_id=txn_id)

    def pending(self, limit: int = 100) -> list[OutboxMessage]:
        """Messages not yet acknowledged, in sequence order."""
        if limit < 1:
            raise DataError(f"limit: must be at least 1, got {limit}")
        with self.db.reading() as conn:
            rows = conn.execute(
                "SELECT * FROM outbox WHERE acked_at IS NULL ORDER BY seq LIMIT ?", (limit,)
            ).fetchall()
        return [_message(r) for r in rows]

    def get(self, seq: int) -> OutboxMessage:
        with self.db.reading() as conn:
            row = conn.execute("SELECT * FROM outbox WHERE seq = ?", (int(seq),)).fetchone()
        if row is None:
            raise UnknownMessage(f"seq: no outbox message {seq}")
        return _message(row)

    def mark_attempt(self, seq: int, error: str = "") -> None:
        """Count a send attempt that got no answer (shown by ``branchline-diag outbox``)."""
        with self.db.transaction() as conn:
            cursor = conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE seq = ?",
                (str(error)[:500], int(seq)),
            )
            if cursor.rowcount != 1:
                raise UnknownMessage(f"seq: no outbox message {seq}")

    def mark_acknowledged(
        self, seq: int, response: bytes, *, keep_payload: bytes | None = None
    ) -> bytes:
        """Record the server's answer; an already acknowledged message keeps its first answer,
        which is returned either way. ``keep_payload`` replaces the stored payload in the same
        commit (the sender drops secrets the server no longer needs from what is kept)."""
        if not isinstance(response, bytes | bytearray | memoryview):
            raise DataError(f"response: must be bytes, got {type(response).__name__}")
        if keep_payload is not None and not isinstance(
            keep_payload, bytes | bytearray | memoryview
        ):
            raise DataError(f"keep_payload: must be bytes, got {type(keep_payload).__name__}")
        with self.db.transaction() as conn:
            row = conn.execute(
                "SELECT acked_at, response FROM outbox WHERE seq = ?", (int(seq),)
            ).fetchone()
            if row is None:
                raise UnknownMessage(f"seq: no outbox message {seq}")
            if row["acked_at"] is not None:
                return bytes(row["response"])
            conn.execute(
                "UPDATE outbox SET acked_at = ?, response = ? WHERE seq = ?",
                (self.db.now(), bytes(response), int(seq)),
            )
            if keep_payload is not None:
                conn.execute(
                    "UPDATE outbox SET payload = ? WHERE seq = ?", (bytes(keep_payload), int(seq))
                )
            return bytes(response)

    def acknowledged_response(self, seq: int) -> bytes | None:
        """The server's (first) answer, or None while the message is unacknowledged."""
        return self.get(seq).response

    def stats(self) -> OutboxStats:
        with self.db.reading() as conn:
            row = conn.execute(
                "SELECT COUNT(*) AS pending, MIN(created_at) AS oldest FROM outbox"
                " WHERE acked_at IS NULL"
            ).fetchone()
            acked = conn.execute(
                "SELECT COUNT(*) FROM outbox WHERE acked_at IS NOT NULL"
            ).fetchone()[0]
            last = conn.execute("SELECT value FROM counters WHERE name = ?", (COUNTER,)).fetchone()
        oldest = 0.0 if row["oldest"] is None else max(0.0, self.db.now() - row["oldest"])
        return OutboxStats(
            pending=int(row["pending"]),
            oldest_age_seconds=oldest,
            acknowledged=int(acked),
            last_seq=0 if last is None else int(last[0]),
        )
