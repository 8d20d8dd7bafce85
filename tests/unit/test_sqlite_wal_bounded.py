"""SQLite's write-ahead log stays bounded under writes that never pause.

The checkpointer's PASSIVE checkpoint copies the log into the database file but never
waits for the writer, so under back-to-back write transactions the log is never restarted
and grows without end (seen in ``make bench``: 500 MB within a minute while the database
was 26 MB, every page read looking through an ever longer log index). Past
``WAL_LIMIT_BYTES`` the checkpointer has the next batch restart it, cut back to the limit;
a reader held open meanwhile only postpones that, it never holds the batch up for long."""

from __future__ import annotations

import os
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from branchline.server.ledger.schema import request_results
from branchline.server.storage import checkpoint, open_database
from branchline.server.storage.engine import batch_transaction, checkpointer_of, savepoint

LIMIT = 256 * 1024
PAYLOAD = os.urandom(2048)  # a few pages a transaction


def _row(request_id: str) -> dict[str, object]:
    return {
        "terminal_id": "T-1",
        "request_id": request_id,
        "kind": "tube_open",
        "response": PAYLOAD,
        "created_at": datetime.now(UTC),
    }


def test_the_log_stays_bounded_under_writes_that_never_pause(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpoint, "SQLITE_CHECKPOINT_SECONDS", 0.05)
    monkeypatch.setattr(checkpoint, "WAL_LIMIT_BYTES", LIMIT)
    path = tmp_path / "server.db"
    engine = open_database(f"sqlite:///{path}")
    wal = Path(f"{path}-wal")
    written = 0
    sizes: list[int] = []
    stop = time.monotonic() + 3.0
    insert = request_results.insert()
    try:
        while time.monotonic() < stop:
            # As the applier writes: one batch after another, each unit in a savepoint.
            with batch_transaction(engine) as conn, savepoint(conn):
                conn.execute(insert, _row(f"r{written}"))
            written += 1
            sizes.append(wal.stat().st_size if wal.exists() else 0)
        with engine.connect() as conn:
            count = conn.execute(request_results.select()).all()
    finally:
        engine.dispose()
    assert len(count) == written > 100
    # Cut back again and again (without the bound it only ever grows), and never far past
    # the limit: about what is written while one passive round runs.
    emptied = sum(1 for before, after in zip(sizes, sizes[1:], strict=False) if after < before)
    largest = max(sizes)
    assert emptied >= 2, f"the log was never cut back; it reached {largest} bytes"
    assert largest < 32 * LIMIT, f"the log reached {largest} bytes after {written} writes"


def test_a_reader_held_open_postpones_the_restart_without_holding_up_the_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "server.db"
    engine = open_database(f"sqlite:///{path}")
    checkpointer = checkpointer_of(engine)
    assert checkpointer is not None
    reader = sqlite3.connect(path)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM request_results").fetchall()  # a snapshot held
        with batch_transaction(engine) as conn, savepoint(conn):
            conn.execute(request_results.insert(), _row("before"))
        checkpointer.wanted = True
        started = time.monotonic()
        with batch_transaction(engine) as conn, savepoint(conn):  # restarts first, if it can
            conn.execute(request_results.insert(), _row("after"))
        assert time.monotonic() - started < 5  # not the connections' 30 s busy timeout
        assert not checkpointer.wanted  # tried; the next passive round asks again if due
    finally:
        reader.rollback()
        reader.close()
        engine.dispose()
