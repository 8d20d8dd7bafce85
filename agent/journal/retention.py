"""Retention of ``journal.db``: what a finished transaction leaves on the terminal goes once
it is older than ``[terminal] journal_retention_days``.

A cheque purchase's outbox holds the customer's ID card read (number, name, birth date, the
card's photo) and a JPEG of their face; a tube transaction's holds the account. The server
has them once it has acknowledged them, and the e-journal keeps the terminal's own record
with masked facts only — so neither the terminal's journal nor its outbox needs them after a
short while for support and for answering a replay. Deleted, a batch in one transaction
(``Database.transaction``: a kill mid-batch leaves the batch whole or not done at all):

- a transaction finished (a final state) before the cutoff: its row, its steps and its
  outbox messages, once every one of those messages was acknowledged before the cutoff;
- an acknowledged message of no transaction, acknowledged before the cutoff.

Never touched: an unfinished transaction (recovery reads its steps and its messages' stored
answers), a message not yet acknowledged (the sender still owes it to the server), and a
transaction a phone job left in ``phone_job`` still follows (``phone_job_recovery.py`` reads
how it ended; a job not yet linked may own any transaction begun since it asked). The
e-journal, the bank's record, is kept whole: its entries are hash-chained and hold no image.
The outbox counter is apart from the rows, so sequence numbers are never reused. Deleted
rows are zeroed (``PRAGMA secure_delete``, db.py) and a sweep that deleted something
truncates the WAL, so the bytes linger neither in free pages nor in old WAL frames.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from dataclasses import dataclass

from branchline.common.logs import log_event

from .db import Database

log = logging.getLogger("branchline.agent.journal")

DAY = 86_400.0
# Transactions (and, apart, transaction-less messages) deleted per database transaction: a
# batch holds the write lock for milliseconds, so a customer's step never waits long on it.
SWEEP_BATCH = 100
# Retention is in days: an hourly sweep deletes within an hour of the limit.
SWEEP_SECONDS = 3600.0

# Finished before the cutoff, with every message acknowledged before it, and no phone job
# that may still need to read it.
_DUE_TRANSACTIONS = """
    SELECT id FROM txn
    WHERE finished = 1 AND updated_at < :cutoff
      AND NOT EXISTS (
        SELECT 1 FROM outbox
        WHERE outbox.txn_id = txn.id AND (outbox.acked_at IS NULL OR outbox.acked_at >= :cutoff)
      )
      AND NOT EXISTS (SELECT 1 FROM phone_job WHERE phone_job.txn_id = txn.id)
      AND NOT EXISTS (
        SELECT 1 FROM phone_job
        WHERE phone_job.txn_id = '' AND phone_job.txn_kind != ''
          AND txn.created_at >= phone_job.updated_at
      )
    ORDER BY updated_at, id
    LIMIT :limit
"""
_DUE_MESSAGES = """
    SELECT seq FROM outbox
    WHERE txn_id IS NULL AND acked_at IS NOT NULL AND acked_at < :cutoff
    ORDER BY seq
    LIMIT :limit
"""


@dataclass(frozen=True)
class Swept:
    """What one batch (or one whole sweep) deleted."""

    transactions: int = 0
    steps: int = 0
    messages: int = 0

    def __add__(self, other: Swept) -> Swept:
        return Swept(
            self.transactions + other.transactions,
            self.steps + other.steps,
            self.messages + other.messages,
        )

    @property
    def empty(self) -> bool:
        return not (self.transactions or self.messages)


@dataclass(frozen=True)
class Held:
    """What the journal holds that retention will delete in time (``branchline-diag outbox``)."""

    finished_transactions: int
    oldest_finished_at: float | None
    acknowledged_messages: int
    oldest_acknowledged_at: float | None


def _delete_in(conn: sqlite3.Connection, table: str, column: str, keys: list[str]) -> int:
    marks = ",".join("?" * len(keys))
    return conn.execute(f"DELETE FROM {table} WHERE {column} IN ({marks})", keys).rowcount


def sweep_batch(db: Database, cutoff: float, limit: int = SWEEP_BATCH) -> Swept:
    """Delete up to ``limit`` finished transactions and ``limit`` transaction-less
    acknowledged messages due at ``cutoff`` (epoch seconds), in one database transaction."""
    if limit < 1:
        raise ValueError(f"limit: must be at least 1, got {limit}")
    with db.transaction() as conn:
        params = {"cutoff": cutoff, "limit": limit}
        ids = [row[0] for row in conn.execute(_DUE_TRANSACTIONS, params)]
        messages = steps = 0
        if ids:
            # Children first: the outbox and the steps refer to the transaction row.
            messages = _delete_in(conn, "outbox", "txn_id", ids)
            steps = _delete_in(conn, "txn_step", "txn_id", ids)
            _delete_in(conn, "txn", "id", ids)
        seqs = [row[0] for row in conn.execute(_DUE_MESSAGES, params)]
        if seqs:
            messages += _delete_in(conn, "outbox", "seq", seqs)
    return Swept(transactions=len(ids), steps=steps, messages=messages)


def held(db: Database) -> Held:
    """Counts and the oldest of what retention will delete in time: finished transactions
    (by when they finished) and acknowledged messages (by when they were acknowledged)."""
    with db.reading() as conn:
        txn = conn.execute(
            "SELECT COUNT(*), MIN(updated_at) FROM txn WHERE finished = 1"
        ).fetchone()
        acked = conn.execute(
            "SELECT COUNT(*), MIN(acked_at) FROM outbox WHERE acked_at IS NOT NULL"
        ).fetchone()
    return Held(int(txn[0]), txn[1], int(acked[0]), acked[1])


class JournalRetention:
    """The agent's sweep on its event loop; ``removed`` totals what it deleted since start
    (the ``branchline_journal_retention_removed_total`` metric)."""

    def __init__(
        self, db: Database, retention_days: float, interval: float = SWEEP_SECONDS
    ) -> None:
        if not retention_days > 0:  # NaN too
            raise ValueError(f"retention_days: must be above 0, got {retention_days}")
        self.db = db
        self.retention_days = retention_days
        self.interval = interval
        self.removed = Swept()

    async def sweep_once(self) -> Swept:
        """Batches until none is due ``retention_days`` before now (``db.now``); each batch
        on a worker thread, so a cancel (the agent stopping) ends the sweep between two."""
        cutoff = self.db.now() - self.retention_days * DAY
        swept = Swept()
        while not (batch := await asyncio.to_thread(sweep_batch, self.db, cutoff)).empty:
            swept += batch
            self.removed += batch
        truncated = False
        if not swept.empty:
            # The WAL still holds the deleted pages as they were written: truncate it.
            truncated = await asyncio.to_thread(self.db.checkpoint)
        log_event(
            log,
            "journal_retention",
            transactions=swept.transactions,
            steps=swept.steps,
            messages=swept.messages,
            retention_days=self.retention_days,
            wal_truncated=truncated,
        )
        return swept

    async def run(self) -> None:
        """Sweep now and every ``interval`` seconds until canceled."""
        while True:
            try:
                await self.sweep_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the next round tries again; retention must go on
                log_event(log, "journal_retention_failed", logging.ERROR, error=repr(exc))
            await asyncio.sleep(self.interval)
