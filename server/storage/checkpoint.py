"""SQLite's write-ahead log folded back into the database file from a thread of its own,
and kept bounded.

SQLite's automatic checkpoint runs inside whichever commit crosses the threshold, and with
``synchronous=FULL`` it syncs the database file there: a request's latency then carries a
checkpoint (p99 spikes of several ms). Connections switch it off (``engine``'s
``_sqlite_on_connect``) and this thread does the work off the request path, every
``SQLITE_CHECKPOINT_SECONDS``: a PASSIVE checkpoint, which never waits for a writer or a
reader.

PASSIVE alone lets the log grow without end under writes that never pause: the log is only
restarted from its beginning by a writer that finds every frame already copied, and a busy
applier always appends new frames while the checkpoint copies the old ones. Measured under
``make bench`` (2026-12-07): 500 MB of log in a minute beside a 26 MB database, every page
read looking through the log's ever longer index. A checkpoint that restarts the log from
this thread does not help: it needs a moment with no writer, and the applier's batches
follow each other with no such moment (its waits in SQLite's busy handler, sleeping between
tries, never land in one). So when the log is past ``WAL_LIMIT_BYTES`` after the passive
round, this thread asks for a restart (``wanted``) and the group-commit applier runs it
itself before its next batch (``restart_if_wanted``, from ``engine.batch_transaction``):
no writer is in the way then; it copies what is left (little, just after a passive round)
and waits up to ``RESTART_WAIT_MS`` for readers still on the old log (one held open longer
only postpones the restart), and the next write starts the log from its beginning,
cut back to ``WAL_LIMIT_BYTES`` (``journal_size_limit``). The log's file is overwritten in
place rather than emptied: appending to an emptied file cost the writes more (measured).
The applier's batches wait for that, once in a while, instead of every read paying for a
long log; throughput under ``make bench`` was unchanged (alternated runs, 2026-12-07).
"""

from __future__ import annotations

import logging
import os
import threading

from sqlalchemy import Engine

from branchline.common.logs import log_event

log = logging.getLogger("branchline.server.storage")

# How often the log is folded back.
SQLITE_CHECKPOINT_SECONDS = 1.0
# A log longer than this after the passive checkpoint is restarted (RESTART checkpoint) and
# cut back to this size (``journal_size_limit``).
WAL_LIMIT_BYTES = 64 * 1024 * 1024
# How long the applier waits, before its batch, for readers still on the old log: a reader
# held open longer (an export) just postpones the restart to a later batch.
RESTART_WAIT_MS = 100


class Checkpointer:
    def __init__(self, engine: Engine, database: str, busy_seconds: float) -> None:
        self._engine = engine
        self._busy_ms = int(busy_seconds * 1000)  # the connections' own busy timeout
        self._wal = f"{database}-wal"
        self.wanted = False  # a RESTART checkpoint is due: the next batch runs it
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(SQLITE_CHECKPOINT_SECONDS):
            try:
                self._round()
            except Exception:  # a busy or closing database: try again next time
                continue

    def _round(self) -> None:
        with self._engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        if self._wal_size() > WAL_LIMIT_BYTES:
            self.wanted = True

    def restart_if_wanted(self) -> None:
        """Run the RESTART checkpoint asked for, on the caller's thread (the applier's,
        before its batch begins: it holds no connection then)."""
        if not self.wanted:
            return
        self.wanted = False
        size = self._wal_size()
        try:
            with self._engine.connect() as conn:
                conn.exec_driver_sql(f"PRAGMA busy_timeout={RESTART_WAIT_MS}")
                try:
                    restart = conn.exec_driver_sql("PRAGMA wal_checkpoint(RESTART)")
                    busy, frames, copied = restart.one()
                finally:
                    conn.exec_driver_sql(f"PRAGMA busy_timeout={self._busy_ms}")
        except Exception as exc:  # never the batch's failure: the next round asks again
            log_event(log, "sqlite_wal_restart_failed", logging.WARNING, error=repr(exc))
            return
        log_event(
            log,
            "sqlite_wal_restarted",
            logging.DEBUG,
            wal_bytes=size,
            done=not busy,
            frames=frames,
            copied=copied,
        )

    def _wal_size(self) -> int:
        try:
            return os.path.getsize(self._wal)
        except OSError:  # no log yet
            return 0
