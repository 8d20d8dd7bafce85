"""The agent's one SQLite file (``journal.db``): WAL, ``synchronous=FULL``, foreign keys on.

Every write runs inside ``Database.transaction()``: ``BEGIN IMMEDIATE`` ... ``COMMIT``; with
WAL and ``synchronous=FULL`` the commit has been fsynced when the outermost block ends. Nested
blocks become savepoints, so a caller can join a journal step, its outbox message and an
e-journal entry into one atomic commit:

    with db.transaction():
        journal.record_step(txn_id, "host_approved", data)
        outbox.enqueue("confirm", payload, txn_id=txn_id)

The schema is created and migrated by ``migrate`` (``PRAGMA user_version``); one connection is
shared behind a re-entrant lock, so the store may be used from the event loop and from worker
threads alike.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


class JournalError(Exception):
    """Base of every error of the journal store; the message names what was wrong."""


class CorruptRecord(JournalError):
    """A stored row cannot be decoded (edited by hand, or storage damage)."""


# One list of statements per schema version; ``MIGRATIONS[n]`` takes version n to n + 1.
# Never edit a released entry: append a new one.
MIGRATIONS: list[list[str]] = [
    [
        # Named monotonically increasing counters (the outbox sequence).
        """CREATE TABLE counters (
            name TEXT PRIMARY KEY,
            value INTEGER NOT NULL
        )""",
        # Write-ahead journal: one row per transaction, its steps below.
        """CREATE TABLE txn (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            state TEXT NOT NULL,
            finished INTEGER NOT NULL DEFAULT 0 CHECK (finished IN (0, 1)),
            terminal_id TEXT NOT NULL,
            data TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )""",
        "CREATE INDEX txn_unfinished ON txn (created_at) WHERE finished = 0",
        """CREATE TABLE txn_step (
            txn_id TEXT NOT NULL REFERENCES txn (id),
            step INTEGER NOT NULL CHECK (step >= 1),
            name TEXT NOT NULL,
            data TEXT NOT NULL,
            at REAL NOT NULL,
            PRIMARY KEY (txn_id, step)
        ) WITHOUT ROWID""",
        # Outbox: messages to the server; key = terminal id + seq (idempotency key).
        """CREATE TABLE outbox (
            seq INTEGER PRIMARY KEY CHECK (seq >= 1),
            key TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            payload BLOB NOT NULL,
            txn_id TEXT REFERENCES txn (id),
            created_at REAL NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT NOT NULL DEFAULT '',
            acked_at REAL,
            response BLOB
        )""",
        "CREATE INDEX outbox_pending ON outbox (seq) WHERE acked_at IS NULL",
        # Electronic journal: append-only, each entry's hash covers the previous hash.
        """CREATE TABLE ejournal (
            seq INTEGER PRIMARY KEY CHECK (seq >= 1),
            at TEXT NOT NULL,
            kind TEXT NOT NULL,
            fields TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        )""",
        # The last entry, MACed: deleting entries at the end (truncation) is detectable.
        """CREATE TABLE ejournal_head (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            seq INTEGER NOT NULL,
            hash TEXT NOT NULL,
            key_id TEXT NOT NULL,
            mac TEXT NOT NULL
        )""",
    ],
    [
        # The phone job this terminal is carrying out (agent/kiosk/flows/phone_job_journal.py):
        # the transaction it started, and its end until the server has acknowledged it.
        """CREATE TABLE phone_job (
            job_id TEXT PRIMARY KEY,
            service TEXT NOT NULL,
            txn_kind TEXT NOT NULL DEFAULT '',
            txn_id TEXT NOT NULL DEFAULT '',
            final BLOB,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )""",
    ],
    [
        # The journal retention (retention.py) finds finished transactions by when they
        # finished and their messages by transaction; deleting a transaction also has SQLite
        # look for outbox rows still referring to it. Without these, each is a full scan.
        "CREATE INDEX txn_finished ON txn (updated_at) WHERE finished = 1",
        "CREATE INDEX outbox_txn ON outbox (txn_id)",
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection, where: str) -> int:
    """Bring the schema to ``SCHEMA_VERSION``, one committed transaction per version."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise JournalError(
            f"{where}: schema version {version} is newer than this agent knows "
            f"({SCHEMA_VERSION}); was the agent downgraded?"
        )
    for target in range(version + 1, SCHEMA_VERSION + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in MIGRATIONS[target - 1]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {target}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return SCHEMA_VERSION


class Database:
    """One connection to ``path``; open with ``Database(path)``, close with ``close()``."""

    def __init__(self, path: Path, *, now: Callable[[], float] = time.time) -> None:
        self.path = path
        self.now = now
        # The file holds masked PANs and card tokens: owner-only from birth (SQLite gives
        # the -wal and -shm files the same mode as the database file).
        if not path.exists():
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        # isolation_level=None: we issue BEGIN/COMMIT ourselves.
        self._conn = sqlite3.connect(
            str(path), isolation_level=None, check_same_thread=False, timeout=10.0
        )
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        self._depth = 0
        # True while the outermost open block is a read (``reading``): no writes inside it.
        self._read_only = False
        try:
            self._configure()
            migrate(self._conn, str(path))
        except BaseException:
            self._conn.close()
            raise

    def _configure(self) -> None:
        conn = self._conn
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise JournalError(f"{self.path}: cannot use WAL mode (got {mode!r})")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA busy_timeout = 10000")
        # Deleted rows are overwritten with zeros, not left in free pages: what retention
        # deletes (ID photos, faces) and the credentials the outbox drops must not linger.
        conn.execute("PRAGMA secure_delete = ON")
        if int(conn.execute("PRAGMA synchronous").fetchone()[0]) != 2:
            raise JournalError(f"{self.path}: synchronous=FULL was not accepted")

    @property
    def closed(self) -> bool:
        return self._depth < 0

    def close(self) -> None:
        with self._lock:
            if self._depth > 0:
                raise JournalError("close() inside a transaction")
            if self._depth == 0:
                self._conn.close()
                self._depth = -1

    def _check_open(self) -> None:
        if self._depth < 0:
            raise JournalError(f"{self.path}: the journal database is closed")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction; durable on exit of the outermost block, undone on an exception."""
        with self._lock:
            self._check_open()
            conn = self._conn
            depth = self._depth
            if self._read_only:
                raise JournalError("a write inside Database.reading(); use transaction()")
            conn.execute("BEGIN IMMEDIATE" if depth == 0 else f"SAVEPOINT sp{depth}")
            self._depth += 1
            try:
                yield conn
            except BaseException:
                self._depth = depth
                if depth == 0:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                else:
                    conn.execute(f"ROLLBACK TO sp{depth}")
                    conn.execute(f"RELEASE sp{depth}")
                raise
            self._depth = depth
            if depth == 0:
                try:
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            else:
                conn.execute(f"RELEASE sp{depth}")

    def checkpoint(self) -> bool:
        """Copy the WAL into the database file and truncate it, so page images of deleted rows
        no longer sit in ``journal.db-wal``; False when a reader kept it from completing."""
        with self._lock:
            self._check_open()
            if self._depth != 0:
                raise JournalError("checkpoint() inside a transaction")
            # Not waiting for a long reader (a full verify): this connection's lock is held
            # meanwhile, and the next sweep tries again.
            self._conn.execute("PRAGMA busy_timeout = 0")
            try:
                busy = self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            finally:
                self._conn.execute("PRAGMA busy_timeout = 10000")
            return not busy

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """A consistent read of several statements (joins an open transaction if there is one)."""
        with self._lock:
            self._check_open()
            conn = self._conn
            if self._depth > 0:
                yield conn
                return
            conn.execute("BEGIN")
            self._depth = 1
            self._read_only = True
            try:
                yield conn
            finally:
                self._depth = 0
                self._read_only = False
                if conn.in_transaction:
                    conn.execute("COMMIT")

    @contextmanager
    def separate_reader(self) -> Iterator[sqlite3.Connection]:
        """A read-only connection of its own for a long read (a full verify): with WAL it sees
        one snapshot and blocks neither this connection's writers nor the event loop."""
        self._check_open()
        conn = sqlite3.connect(
            self.path.absolute().as_uri() + "?mode=ro", uri=True, check_same_thread=False
        )
        conn.row_factory = sqlite3.Row
        try:
            conn.execute("BEGIN")
            yield conn
        finally:
            conn.close()

    def require_transaction(self, conn: sqlite3.Connection) -> None:
        """For helpers that take an open connection: refuse one outside a transaction."""
        if conn is not self._conn or not conn.in_transaction or self._depth <= 0 or self._read_only:
            raise JournalError(
                "this helper must run inside Database.transaction() of the same database"
            )
