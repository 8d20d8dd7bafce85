"""The phone job this terminal is carrying out, journaled (``journal.db``, table ``phone_job``).

The job is written before the terminal reports it ``received``; the kind of transaction it
is about to start (a tube transaction or a cheque sale) just before it asks the engine, and
the transaction's id once the engine has journaled it (a crash between the two: the
transaction is the first of that kind the journal began since, the terminal serving one
customer and one transaction at a time); and its end
(the ``phone_job_update`` to send, serialized) before it is sent; the row goes once the
server has acknowledged the end. So after a restart the agent knows what it left:

- an end not yet acknowledged: sent again (the server keeps the first end it got);
- a transaction: the engine recovers it to its own end (a host-approved withdrawal not
  paid out is reversed by the engine, as for any transaction); the job then ends as its
  transaction did (``done`` with the receipt when it completed, else ``abandoned``);
- nothing started: ``abandoned`` (``agent_restarted``).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from branchline.agent.journal.db import Database
from branchline.v1 import mobile_pb2


@dataclass(frozen=True)
class JournaledJob:
    job_id: str
    service: str
    txn_kind: str
    txn_id: str
    final: mobile_pb2.PhoneJobUpdate | None
    # When the row last changed (for a transaction about to start: when it was asked for).
    updated_at: float = 0.0


def _job(row: sqlite3.Row) -> JournaledJob:
    final = None
    if row["final"] is not None:
        final = mobile_pb2.PhoneJobUpdate.FromString(bytes(row["final"]))
    return JournaledJob(
        row["job_id"], row["service"], row["txn_kind"], row["txn_id"], final, row["updated_at"]
    )


def remember(db: Database, job_id: str, service: str) -> None:
    """A job taken on (before ``received`` is reported); a repeat changes nothing."""
    with db.transaction() as conn:
        now = db.now()
        conn.execute(
            "INSERT INTO phone_job (job_id, service, created_at, updated_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (job_id) DO NOTHING",
            (job_id, service, now, now),
        )


def intend(db: Database, job_id: str, txn_kind: str) -> None:
    """The job is about to start a transaction of ``txn_kind`` (``tube`` or ``cheque``)."""
    link(db, job_id, txn_kind, "")


def begun_since(db: Database, since: float) -> list[tuple[str, str]]:
    """``(id, kind)`` of the transactions the journal began at or after ``since``, oldest
    first."""
    with db.reading() as conn:
        rows = conn.execute(
            "SELECT id, kind FROM txn WHERE created_at >= ? ORDER BY created_at, id", (since,)
        ).fetchall()
    return [(row["id"], row["kind"]) for row in rows]


def link(db: Database, job_id: str, txn_kind: str, txn_id: str) -> None:
    """The transaction the job started (``tube`` or ``cheque``)."""
    with db.transaction() as conn:
        conn.execute(
            "UPDATE phone_job SET txn_kind = ?, txn_id = ?, updated_at = ? WHERE job_id = ?",
            (txn_kind, txn_id, db.now(), job_id),
        )


def decide(db: Database, update: mobile_pb2.PhoneJobUpdate, service: str = "") -> None:
    """The job's end, kept until the server acknowledges it. The first end decided stays."""
    with db.transaction() as conn:
        now = db.now()
        conn.execute(
            "INSERT INTO phone_job (job_id, service, created_at, updated_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (job_id) DO NOTHING",
            (update.job_id, service, now, now),
        )
        conn.execute(
            "UPDATE phone_job SET final = ?, updated_at = ? WHERE job_id = ? AND final IS NULL",
            (update.SerializeToString(), now, update.job_id),
        )


def final(db: Database, job_id: str) -> mobile_pb2.PhoneJobUpdate | None:
    with db.reading() as conn:
        row = conn.execute("SELECT * FROM phone_job WHERE job_id = ?", (job_id,)).fetchone()
    return None if row is None else _job(row).final


def forget(db: Database, job_id: str) -> None:
    """The server has the job's end."""
    with db.transaction() as conn:
        conn.execute("DELETE FROM phone_job WHERE job_id = ?", (job_id,))


def left(db: Database) -> list[JournaledJob]:
    """Every job journaled and not yet ended at the server, oldest first."""
    with db.reading() as conn:
        rows = conn.execute("SELECT * FROM phone_job ORDER BY created_at, job_id").fetchall()
    return [_job(row) for row in rows]
