"""Event-log rows appended at commit, so that readers tailing a log by id miss none.

``tube_events``, ``fleet_events`` and ``dispatch_events`` are tailed by id: a watcher
remembers the last id it read and asks for larger ones. On PostgreSQL an id is drawn from
the sequence when its row is inserted but becomes visible when its transaction commits; two
writers committing out of id order would make a reader that already read the higher id skip
the lower one. So a log's rows are not inserted where the change is made: ``append`` keeps
them with the transaction, and just before it commits (the applier's whole batch, or a lone
``write_transaction``) ``flush`` takes each written log's advisory lock (PostgreSQL; in key
order) and inserts them; the COMMIT follows at once. The lock is held from those inserts to
the end of the commit, never across the batch's work: ids become visible in increasing
order, and replicas' batches run side by side up to their commits. SQLite has one writer at
a time anyway; the rows go in at the same point there.

A unit of work rolled back to its SAVEPOINT takes its rows with it (``storage.engine``'s
``savepoint`` calls ``mark`` and ``rollback_to``). Rows appended within one transaction get
ids in the order they were appended. Reads inside the writing transaction do not see them.

Tables whose writer needs the new row's id at once (``call_signals``, ``call_commands``,
``tube_desk_signals``: the id is the sender's answer) cannot wait for the commit; they are
tailed per stream (one call's teller signals, say), so ``take_turns`` makes the appends to
one stream wait for each other instead, and nothing else.

The same mechanism carries other work a transaction keeps for its commit: an ``EventLog``
without a lock key is applied first, before any log's lock is taken, and takes whatever
locks it needs itself — the ledger's legs on the bank's internal accounts
(``ledger.internal_legs``: the branch vault's row is locked only from there to the commit).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

Rows = list[dict[str, Any]]


@dataclass(frozen=True, eq=False)
class EventLog:
    """A table tailed by id: its advisory lock's key and how to insert its rows. Without a
    key (None): rows applied at commit before the logs' locks, under locks of their own."""

    name: str
    lock_key: int | None
    insert: Callable[[Connection, Rows], None]


# Connection -> (log, rows) appended in its open transaction, in order.
_pending: dict[Connection, list[tuple[EventLog, Rows]]] = {}

# Names the advisory locks of ``take_turns`` (two-int form, with the stream's hash).
STREAM_LOCK_CLASS = 0x626C_6373  # "blcs"
_LOCK_STREAM = text("SELECT pg_advisory_xact_lock(:class_id, hashtext(:stream))")
_LOCK_LOGS = text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[])) AS k")


def append(conn: Connection, log: EventLog, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` into ``log`` just before ``conn``'s transaction commits."""
    pending = _pending.get(conn)
    if pending is None:
        raise RuntimeError(
            f"{log.name}: rows are appended inside storage.engine.write_transaction or "
            "batch_transaction (they are inserted at its commit)"
        )
    if rows:
        pending.append((log, list(rows)))


@contextmanager
def collecting(conn: Connection) -> Iterator[None]:
    """The transaction's appended rows, inserted when the block ends without error (before
    the caller commits); dropped when it raises."""
    if conn in _pending:
        raise RuntimeError("commit_order: one collecting block per transaction")
    _pending[conn] = []
    try:
        yield
        flush(conn, _pending[conn])
    finally:
        del _pending[conn]


def appended(conn: Connection, log: EventLog) -> Rows:
    """The rows appended to ``log`` in ``conn``'s open transaction so far, in order."""
    return [row for each, rows in _pending.get(conn, ()) if each is log for row in rows]


def mark(conn: Connection) -> int | None:
    """Where a SAVEPOINT starts in ``conn``'s appended rows (None: not collecting)."""
    pending = _pending.get(conn)
    return None if pending is None else len(pending)


def rollback_to(conn: Connection, position: int | None) -> None:
    """Forget the rows appended since ``mark`` returned ``position``."""
    pending = _pending.get(conn)
    if pending is not None and position is not None:
        del pending[position:]


def flush(conn: Connection, pending: list[tuple[EventLog, Rows]]) -> None:
    """Apply the rows of logs without a lock key (by name); then lock the written logs
    (PostgreSQL) and insert each log's rows in one statement."""
    by_log: dict[EventLog, Rows] = {}
    for log, rows in pending:
        by_log.setdefault(log, []).extend(rows)
    # First, and outside the logs' locks: what they wait for (row locks) never holds the
    # logs, and a flush holding a log's lock waits on nothing but its commit.
    for log in sorted((log for log in by_log if log.lock_key is None), key=lambda g: g.name):
        log.insert(conn, by_log.pop(log))
    if not by_log:
        return
    logs = sorted(by_log, key=lambda log: log.lock_key or 0)
    if conn.dialect.name == "postgresql":
        # In key order: two flushes never wait on each other's second lock.
        conn.execute(_LOCK_LOGS, {"keys": [log.lock_key for log in logs]})
    for log in logs:
        log.insert(conn, by_log[log])


def take_turns(conn: Connection, stream: str) -> None:
    """Before appending a row to ``stream`` (e.g. ``call_signals:<call>:teller``) of a table
    its readers tail by id, in the appending transaction (PostgreSQL; SQLite has one writer).

    Ids are drawn at insert and visible at commit: two transactions appending to one stream
    at once (a console's requests served by two replicas while it reconnects, two consoles
    of one teller) could commit out of id order, and a reader that read the higher id would
    skip the lower. Held to the commit, this lock makes them take turns; writers of other
    streams never wait on it."""
    if conn.dialect.name == "postgresql":
        conn.execute(_LOCK_STREAM, {"class_id": STREAM_LOCK_CLASS, "stream": stream})
