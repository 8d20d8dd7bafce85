"""Open the server's database and bring its schema to the newest migration."""

from __future__ import annotations

import itertools
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import StaticPool

from branchline.server.storage import checkpoint, commit_order
from branchline.server.storage.batch import BatchState
from branchline.server.storage.checkpoint import Checkpointer
from branchline.server.storage.deferred import DeferredSavepoints, with_queued

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

# Arbitrary constant naming the "schema migration" advisory lock in PostgreSQL.
MIGRATION_LOCK_KEY = 0x6272_6C6E_6D69_6772  # "brlnmigr"

# How long a SQLite writer waits for another one before "database is locked".
SQLITE_BUSY_SECONDS = 30.0

_WRITE_OPTION = "branchline_write"

# Alembic keeps its migration context in module globals: one upgrade per process at a time.
_UPGRADE_LOCK = threading.Lock()


def open_database(url: str) -> Engine:
    """Create an engine for ``url`` and apply every pending migration.

    Several replicas may start at once against one PostgreSQL database: the upgrade runs
    under an advisory lock, so one migrates and the others then find the schema current.
    """
    sa_url = make_url(url)
    if sa_url.get_backend_name() == "sqlite":
        engine = _sqlite_engine(sa_url)
    else:
        engine = create_engine(sa_url, pool_pre_ping=True)
    try:
        upgrade_to_head(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


def alembic_config() -> Config:
    """An Alembic configuration for the packaged migrations, built without an ini file."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def upgrade_to_head(engine: Engine) -> None:
    """Apply pending migrations; open_database does this already."""
    config = alembic_config()
    with _UPGRADE_LOCK, write_transaction(engine) as conn:
        if conn.dialect.name == "postgresql":
            # Transaction-scoped: released by the commit that also makes the new schema
            # visible, so a waiting replica sees the migrated version table.
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        # env.py runs the migrations on this connection, inside this transaction.
        config.attributes["connection"] = conn
        # "heads": capabilities keep independent migration branches (fleet, dispatch, ledger).
        command.upgrade(config, "heads")


def write_transaction(engine: Engine) -> AbstractContextManager[Connection]:
    """A transaction that will write; committed on success, rolled back on error.

    On SQLite it starts with BEGIN IMMEDIATE: a deferred transaction that reads and then
    writes fails at once with "database is locked" when another writer got in between,
    whereas IMMEDIATE waits for the write lock up front.

    Inside ``batch_transaction`` on this thread (the group-commit applier) it is a SAVEPOINT
    of the batch's one transaction instead: undone alone on error, durable with the batch.
    Event-log rows appended in it (``commit_order.append``) are inserted just before COMMIT.
    (Context managers returned, not generators: the request path takes several a message.)
    """
    ambient = _ambient_connection(engine)
    if ambient is not None:
        return savepoint(ambient)
    return _own_write_transaction(engine)


@contextmanager
def _own_write_transaction(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn:
        conn.execution_options(**{_WRITE_OPTION: True})
        with conn.begin(), commit_order.collecting(conn):
            yield conn


_savepoint_names = itertools.count()
# engine -> told how many statements ran on the DBAPI cursor directly (the savepoints below),
# which SQLAlchemy's statement events do not see (the metrics' statement counter).
_raw_counters: dict[int, Callable[[int], None]] = {}


def count_raw_statements(engine: Engine, counter: Callable[[int], None]) -> None:
    """Tell ``counter(n)`` of the statements ``savepoint`` runs on ``engine``'s connections."""
    _raw_counters[id(engine)] = counter


def raw_counter(engine: Engine) -> Callable[[int], None] | None:
    """Who to tell of statements run on ``engine``'s DBAPI cursors directly (or None)."""
    return _raw_counters.get(id(engine))


def savepoint(conn: Connection) -> AbstractContextManager[Connection]:
    """A SAVEPOINT of ``conn``'s transaction: released on success, rolled back to (alone)
    on error. On a SQLite batch's connection it is issued lazily, only once something is
    written under it (``storage.batch``); elsewhere at once."""
    state = batch_state(conn)
    if state is not None:
        return state.savepoint()
    found: _Batch | None = getattr(_batch, "current", None)
    if found is not None and found.conn is conn and found.deferred is not None:
        return found.deferred.savepoint()
    return _eager_savepoint(conn)


@contextmanager
def _eager_savepoint(conn: Connection) -> Iterator[Connection]:
    # Issued on the DBAPI cursor: SQLAlchemy's ``begin_nested`` costs ~0.3 ms of Python per
    # savepoint, this ~0.01 ms.
    name = f"bl_sp_{next(_savepoint_names)}"
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    counter = raw_counter(conn.engine)
    appended = commit_order.mark(conn)
    try:
        cursor.execute(f"SAVEPOINT {name}")
        try:
            yield conn
        except BaseException:
            cursor.execute(f"ROLLBACK TO SAVEPOINT {name}")
            cursor.execute(f"RELEASE SAVEPOINT {name}")
            commit_order.rollback_to(conn, appended)  # its event-log rows go with it
            if counter is not None:
                counter(3)
            raise
        cursor.execute(f"RELEASE SAVEPOINT {name}")
        if counter is not None:
            counter(2)
    finally:
        cursor.close()


def connect(engine: Engine) -> AbstractContextManager[Connection]:
    """``engine.connect()`` for reads, except inside ``batch_transaction`` on this thread:
    there the batch's connection, so a read sees the batch's own uncommitted writes."""
    ambient = _ambient_connection(engine)
    if ambient is not None:
        return nullcontext(ambient)
    return engine.connect()  # closed when the block ends


@dataclass(frozen=True)
class _Batch:
    engine: Engine
    conn: Connection
    state: BatchState | None  # SQLite: the read cache and lazy savepoints
    deferred: DeferredSavepoints | None = (
        None  # PostgreSQL: savepoints sent with the next statement
    )


_batch = threading.local()


def _ambient_connection(engine: Engine) -> Connection | None:
    found: _Batch | None = getattr(_batch, "current", None)
    if found is None or found.engine is not engine:
        return None
    return found.conn


def in_batch(engine: Engine) -> bool:
    """True inside ``batch_transaction(engine)`` on this thread."""
    return _ambient_connection(engine) is not None


def batch_state(conn: Connection) -> BatchState | None:
    """The read cache and savepoints of ``conn`` when it is this thread's SQLite batch."""
    found: _Batch | None = getattr(_batch, "current", None)
    if found is None or found.conn is not conn:
        return None
    return found.state


@contextmanager
def batch_transaction(engine: Engine) -> Iterator[Connection]:
    """One write transaction for many units of work on this thread (group commit).

    Every ``write_transaction`` and ``connect`` of ``engine`` on this thread joins it (as a
    SAVEPOINT, and its connection) until the block ends; the block's end is the one
    commit — one fsync of the log for all of them, preceded by the inserts of every
    event-log row the batch appended (``commit_order``). Work that must survive its
    neighbours' failure runs in ``savepoint(conn)``. On SQLite the batch's reads are cached
    and its savepoints issued lazily (``storage.batch``).
    """
    if getattr(_batch, "current", None) is not None:
        raise RuntimeError("batch_transaction: one batch per thread at a time")
    checkpointer = _checkpointers.get(id(engine))
    if checkpointer is not None:  # SQLite: a log grown too long restarts first
        checkpointer.restart_if_wanted()
    with engine.connect() as conn:
        conn.execution_options(**{_WRITE_OPTION: True})
        with conn.begin(), commit_order.collecting(conn):
            sqlite = conn.dialect.name == "sqlite"
            state = BatchState(conn, raw_counter(engine)) if sqlite else None
            _batch.current = _Batch(engine, conn, state, _deferred_savepoints(engine, conn))
            try:
                yield conn
            finally:
                _batch.current = None
                if state is not None:
                    state.close()


def _deferred_savepoints(engine: Engine, conn: Connection) -> DeferredSavepoints | None:
    if conn.dialect.name != "postgresql" or conn.dialect.driver != "psycopg2":
        return None
    if not event.contains(engine, "before_cursor_execute", _pg_before_execute):
        event.listen(engine, "before_cursor_execute", _pg_before_execute, retval=True)
    return DeferredSavepoints(conn, raw_counter(engine))


def _pg_before_execute(
    conn: Connection,
    cursor: Any,
    statement: str,
    parameters: Any,
    _context: Any,
    executemany: bool,
) -> tuple[str, Any]:
    # The batch's queued savepoints go in front of its next statement (storage.deferred).
    found: _Batch | None = getattr(_batch, "current", None)
    if found is not None and found.conn is conn and found.deferred is not None:
        statement = with_queued(found.deferred, cursor, statement, executemany)
    return statement, parameters


def _sqlite_before_execute(conn: Connection, _cursor: Any, statement: str, *_args: Any) -> None:
    # A statement SQLAlchemy runs on the batch's connection that is not a plain read may
    # write anything: issue the batch's pending savepoint and forget its cached rows.
    state = batch_state(conn)
    if state is not None and statement.lstrip()[:6].upper() != "SELECT":
        state.before_write(None)


# SQLite file engines -> the thread that folds their log back (storage.checkpoint).
_checkpointers: dict[int, Checkpointer] = {}


def checkpointer_of(engine: Engine) -> Checkpointer | None:
    """The thread folding ``engine``'s log back (SQLite files; None elsewhere)."""
    return _checkpointers.get(id(engine))


def _sqlite_engine(url: URL) -> Engine:
    database = url.database or ""
    in_memory = database in ("", ":memory:") or database.startswith("file::memory:")
    kwargs: dict[str, Any] = {"connect_args": {"timeout": SQLITE_BUSY_SECONDS}}
    if in_memory:
        # One shared connection, or every pooled connection would see its own empty database.
        kwargs["poolclass"] = StaticPool
        kwargs["connect_args"]["check_same_thread"] = False
    elif not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, **kwargs)
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    event.listen(engine, "before_cursor_execute", _sqlite_before_execute)
    if not in_memory:
        # A file: URI names its file before its query string.
        path = database.removeprefix("file:").split("?", 1)[0]
        checkpointer = Checkpointer(engine, str(Path(path).expanduser()), SQLITE_BUSY_SECONDS)
        _checkpointers[id(engine)] = checkpointer
        event.listen(engine, "engine_disposed", lambda _engine: checkpointer.stop())
    return engine


def _sqlite_on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself (see _sqlite_on_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        _enable_wal(cursor)
        # FULL: a commit is on disk before the terminal hears "applied" — it will never send
        # that message again, so a power cut must not take the commit back. (NORMAL in WAL
        # mode keeps the database consistent but can lose the last commits.)
        cursor.execute("PRAGMA synchronous=FULL")
        # Checkpoints run in storage.checkpoint's thread, not inside a request's commit.
        cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.execute("PRAGMA foreign_keys=ON")
        # The savepoints' statement journal (and sorts) in memory, not spilled to a temp file
        # past 64 KiB: a batch of savepoints cost ~15 % more CPU with files (tube_profile,
        # 2026-12-07). Nothing durable lives there.
        cursor.execute("PRAGMA temp_store=MEMORY")
        # A log restarted from its beginning (storage.checkpoint) is cut back to this size.
        cursor.execute(f"PRAGMA journal_size_limit={checkpoint.WAL_LIMIT_BYTES}")
    finally:
        cursor.close()


def _enable_wal(cursor: sqlite3.Cursor) -> None:
    # WAL: readers do not block the writer nor the writer the readers. The mode is stored
    # in the file, so only the first connection switches; switching fails at once, without
    # waiting for the busy timeout, while another connection is in the file: retry.
    deadline = time.monotonic() + SQLITE_BUSY_SECONDS
    while cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _sqlite_on_begin(conn: Connection) -> None:
    immediate = conn.get_execution_options().get(_WRITE_OPTION, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
