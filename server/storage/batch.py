"""A group-commit batch's connection on SQLite: a read cache and savepoints issued lazily.

Inside ``engine.batch_transaction`` one connection holds SQLite's write lock (``BEGIN
IMMEDIATE``) from the batch's first statement to its commit: nothing but this thread changes
the database meanwhile. Two savings follow, both measured on the request path
(bench/tube_profile.py, 2026-12-07: a withdrawal read the same account, hold, transaction
and teller rows two or three times, and took 13 savepoints, each two statements):

* **Read cache.** ``fastpath.execute`` keeps the rows of a ``SELECT`` of plain tables (a
  join too; keyed by its SQL and bound values, so a ``FOR UPDATE`` read — the same SQL on
  SQLite — shares them) and answers the same read from them until this connection writes one
  of those tables: every write drops the rows read from its table first (``before_write``), a statement SQLAlchemy runs that is not a
  ``SELECT`` drops them all (``engine``'s ``before_cursor_execute`` listener), and so does a
  ``ROLLBACK TO``. The cache ends with the batch.
* **Lazy savepoints.** A savepoint matters only once something is written under it.
  ``savepoint`` issues nothing when it begins; the first write after it issues ONE
  ``SAVEPOINT`` for every savepoint begun since the last write (they would all roll back to
  the same state). The outermost of them releases it; an inner one that fails rolls back to
  it and leaves it for the outer one. A savepoint under which nothing was written costs no
  statement at all. Every physical savepoint has the same name: they nest strictly (context
  managers on one thread), so ``ROLLBACK TO`` and ``RELEASE`` always mean the innermost one,
  and the three statements stay in the sqlite3 module's prepared-statement cache (a new name
  each time was a new statement to prepare, and pushed a prepared one out of the cache).
* **Statements counted per batch.** The batch's raw statements are added up here and told to
  the metrics counter once, when the batch ends (a locked counter increment per statement
  was ~2 % of the applier thread's samples).

PostgreSQL never gets here: its batch runs every statement through SQLAlchemy, savepoints
eagerly (``engine.savepoint``).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from types import TracebackType
from typing import Any

from sqlalchemy import Connection

from branchline.server.storage import commit_order

# The one name of every physical savepoint (see the module's docstring).
_NAME = "bl_lsp"
_SAVEPOINT = f"SAVEPOINT {_NAME}"
_ROLLBACK_TO = f"ROLLBACK TO SAVEPOINT {_NAME}"
_RELEASE = f"RELEASE SAVEPOINT {_NAME}"


class LazySavepoint:
    """One ``savepoint(conn)`` of a batch: whether a physical SAVEPOINT was issued for it
    (``name``, None until something is written under it), and whether it is the outermost of
    the savepoints sharing that physical one (the one that releases it)."""

    __slots__ = ("_state", "name", "owner", "_appended")

    def __init__(self, state: BatchState) -> None:
        self._state = state
        self.name: str | None = None
        self.owner = False
        self._appended: int | None = None

    def __enter__(self) -> Connection:
        self._state.pending.append(self)
        # Event-log rows wait for the commit in memory (commit_order): a unit of work that
        # fails takes its rows with it, whether or not a SAVEPOINT was issued for it.
        self._appended = commit_order.mark(self._state.conn)
        return self._state.conn

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._state.end(self, failed=kind is not None)
        if kind is not None:
            commit_order.rollback_to(self._state.conn, self._appended)


class BatchState:
    """The batch's connection with its read cache and the savepoints not issued yet."""

    __slots__ = ("conn", "cursor", "_counter", "statements", "_rows", "_by_table", "pending")

    def __init__(self, conn: Connection, counter: Callable[[int], None] | None) -> None:
        self.conn = conn
        # One DBAPI cursor for the batch's raw statements (fastpath, savepoints).
        self.cursor: Any = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        self._counter = counter
        self.statements = 0  # run on ``cursor`` and not yet told to ``_counter``
        self._rows: dict[Hashable, list[Any]] = {}
        self._by_table: dict[str, list[Hashable]] = {}
        self.pending: list[LazySavepoint] = []

    def close(self) -> None:
        self.flush_count()
        self._rows.clear()
        self._by_table.clear()
        self.cursor.close()

    def flush_count(self) -> None:
        """Tell the metrics counter of the statements run since the last time."""
        if self.statements and self._counter is not None:
            self._counter(self.statements)
        self.statements = 0

    # -- the read cache ----------------------------------------------------------------------

    def cached(self, key: Hashable) -> list[Any] | None:
        return self._rows.get(key)

    def keep(self, tables: tuple[str, ...], key: Hashable, rows: list[Any]) -> None:
        """Keep a read's rows until this connection writes any of ``tables``."""
        self._rows[key] = rows
        for table in tables:
            self._by_table.setdefault(table, []).append(key)

    def before_write(self, table: str | None) -> None:
        """About to write ``table`` (None: unknown, maybe any): issue the pending savepoint
        and forget what was read of it."""
        if self.pending:
            self._issue()
        if table is None:
            self._rows.clear()
            self._by_table.clear()
            return
        for key in self._by_table.pop(table, ()):
            self._rows.pop(key, None)

    # -- savepoints --------------------------------------------------------------------------

    def savepoint(self) -> LazySavepoint:
        return LazySavepoint(self)

    def _issue(self) -> None:
        self._run(_SAVEPOINT)
        self.pending[0].owner = True
        for savepoint in self.pending:
            savepoint.name = _NAME
        self.pending.clear()

    def end(self, savepoint: LazySavepoint, *, failed: bool) -> None:
        if savepoint.name is None:  # nothing was written under it: nothing to undo or release
            self.pending.remove(savepoint)
            return
        if failed:
            self._run(_ROLLBACK_TO)
            self.before_write(None)  # the rows read since may be gone
        if savepoint.owner:
            self._run(_RELEASE)

    def _run(self, sql: str) -> None:
        self.cursor.execute(sql)
        self.statements += 1
