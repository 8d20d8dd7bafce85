"""A PostgreSQL batch's savepoints, sent with the statement that follows them.

On PostgreSQL every statement is a round trip, and the applier's batch runs each unit of
work, and each ``write_transaction`` nested in one, under a SAVEPOINT of its own: 13 of them
a withdrawal, 26 of its 77 statements (``SAVEPOINT`` and ``RELEASE``), each waiting for the
server's answer while the batch holds its row locks. Here they are not sent on their own:
they wait in ``queue`` and go, joined by ``;``, in front of the next statement the batch's
connection runs (``before_cursor_execute``, which SQLAlchemy lets rewrite the statement;
psycopg2 sends a statement with its values bound as one simple query, and PostgreSQL runs
its parts in order inside the transaction, the result being the last part's). So a savepoint
still covers every statement run under it — it reaches the server first in the same message
— and a failed statement can still be rolled back to it alone.

What the queue saves besides round trips: a savepoint under which nothing ran is never sent
(its ``SAVEPOINT`` is still queued when it ends: both are dropped), and a ``RELEASE`` still
queued when the batch commits is dropped (COMMIT releases them all). A unit that fails after
its ``SAVEPOINT`` was sent rolls back to it at once (``ROLLBACK TO``, then ``RELEASE``): the
next statement must not run in a failed transaction.

The statements sent are counted like the eager savepoints' (``raw_counter``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection

from branchline.server.storage import commit_order


class DeferredSavepoints:
    """The savepoint statements of one PostgreSQL batch not sent yet."""

    __slots__ = ("conn", "queue", "_counter", "_names")

    def __init__(self, conn: Connection, counter: Callable[[int], None] | None) -> None:
        self.conn = conn
        self.queue: list[str] = []
        self._counter = counter
        self._names = 0

    @contextmanager
    def savepoint(self) -> Iterator[Connection]:
        self._names += 1
        name = f"bl_dsp_{self._names}"
        begin = f"SAVEPOINT {name}"  # this object, not an equal string, marks it in the queue
        self.queue.append(begin)
        appended = commit_order.mark(self.conn)
        try:
            yield self.conn
        except BaseException:
            if not self._drop_from(begin):  # sent: statements ran under it, undo them
                self.queue.clear()  # what waits was begun under it and is undone with it
                self._send(f"ROLLBACK TO SAVEPOINT {name}; RELEASE SAVEPOINT {name}", 2)
            commit_order.rollback_to(self.conn, appended)  # its event-log rows go with it
            raise
        if not self._drop_from(begin):
            self.queue.append(f"RELEASE SAVEPOINT {name}")

    def _drop_from(self, begin: str) -> bool:
        """Drop ``begin`` and what was queued after it when it was never sent: nothing ran
        under it. False when it was sent."""
        for i in range(len(self.queue) - 1, -1, -1):
            if self.queue[i] is begin:
                del self.queue[i:]
                return True
        return False

    def take(self) -> str | None:
        """The queued statements as one prefix (and counted), or None; the queue empties."""
        if not self.queue:
            return None
        prefix = "; ".join(self.queue)
        self._count(len(self.queue))
        self.queue.clear()
        return prefix

    def _send(self, sql: str, statements: int) -> None:
        cursor = self.conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(sql)
        finally:
            cursor.close()
        self._count(statements)

    def _count(self, statements: int) -> None:
        if self._counter is not None:
            self._counter(statements)


def with_queued(
    deferred: DeferredSavepoints, cursor: Any, statement: str, executemany: bool
) -> str:
    """``statement`` with the queued savepoints in front of it. A statement run once per
    parameter set (``executemany``) would repeat them: they are sent on their own first."""
    prefix = deferred.take()
    if prefix is None:
        return statement
    if executemany:
        cursor.execute(prefix)
        return statement
    return f"{prefix}; {statement}"
