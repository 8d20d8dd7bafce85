"""``storage.fastpath.execute``: the same rows, values and errors as ``conn.execute`` (on
SQLite through the DBAPI cursor, elsewhere through SQLAlchemy), and counted."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, bindparam, event, select
from sqlalchemy.exc import IntegrityError

from branchline.server.ledger.schema import request_results
from branchline.server.storage import write_transaction
from branchline.server.storage.engine import count_raw_statements
from branchline.server.storage.fastpath import execute
from branchline.server.storage.prebuilt import by_key, key, update_by_key

AT = datetime(2026, 12, 7, 4, 0, 0, 123456, tzinfo=UTC)
INSERT = request_results.insert()
BY_KIND = (
    select(request_results.c.request_id, request_results.c.created_at)
    .where(request_results.c.kind == bindparam("kind"), request_results.c.terminal_id == "T-1")
    .order_by(request_results.c.request_id)
)


def _row(request_id: str, kind: str = "tube_open") -> dict[str, object]:
    return {
        "terminal_id": "T-1",
        "request_id": request_id,
        "kind": kind,
        "response": b"\x00reply",
        "created_at": AT,
    }


def test_rows_values_and_errors_as_sqlalchemy(engine: Engine) -> None:
    counted: list[int] = []
    count_raw_statements(engine, counted.append)
    one = by_key(request_results, ("terminal_id", "request_id"))
    with write_transaction(engine) as conn:
        execute(conn, INSERT, [_row("a"), _row("b"), _row("c", "tube_event")])  # executemany
        for params in ({key("terminal_id"): "T-1", key("request_id"): "b"},):
            fast, slow = execute(conn, one, params).one(), conn.execute(one, params).one()
            assert tuple(fast) == tuple(slow) and fast._mapping == dict(slow._mapping)
            assert fast.created_at == AT and fast.created_at.tzinfo is not None
            assert bytes(fast.response) == b"\x00reply"
        # A literal bound in the statement ("T-1") and one given at execution.
        assert [r.request_id for r in execute(conn, BY_KIND, {"kind": "tube_open"})] == ["a", "b"]
        assert execute(conn, BY_KIND, {"kind": "none"}).first() is None
        later = AT.replace(second=9)
        execute(
            conn,
            update_by_key(request_results, "request_id"),
            {"created_at": later, key("request_id"): "c"},
        )
        got = execute(conn, one, {key("terminal_id"): "T-1", key("request_id"): "c"}).scalar()
        assert got == "T-1"  # the first column
        assert conn.execute(select(request_results.c.created_at).where(
            request_results.c.request_id == "c"
        )).scalar() == later  # fmt: skip
    if engine.dialect.name == "sqlite":
        assert sum(counted) >= 6  # the statements run on the cursor are counted
    with pytest.raises(IntegrityError), write_transaction(engine) as conn:
        execute(conn, INSERT, _row("a"))  # the same key again: SQLAlchemy's IntegrityError


def test_runs_on_the_cursor_on_both_databases(engine: Engine) -> None:
    """SQLAlchemy's statement-level machinery (``before_execute``) is skipped for a prebuilt
    statement on SQLite and on PostgreSQL alike; its cursor-level events still fire there
    (the statement counter), and a column type the server reports (PostgreSQL's timestamp
    with time zone, a bytea) comes back processed as SQLAlchemy would."""
    statements: list[str] = []
    cursor_statements: list[str] = []
    event.listen(engine, "before_execute", lambda *a: statements.append(str(a[1])))
    event.listen(engine, "before_cursor_execute", lambda *a: cursor_statements.append(a[2]))
    one = by_key(request_results, ("terminal_id", "request_id"))
    params = {key("terminal_id"): "T-1", key("request_id"): "p"}
    with write_transaction(engine) as conn:
        execute(conn, INSERT, _row("p"))
        before = len(statements)
        fast = execute(conn, one, params).one()
        assert len(statements) == before  # not through conn.execute
        slow = conn.execute(one, params).one()
        assert len(statements) == before + 1
    assert tuple(fast) == tuple(slow) and fast.created_at == AT
    assert bytes(fast.response) == b"\x00reply"
    if engine.dialect.name == "postgresql":  # SQLAlchemy's cursor events saw it
        assert (
            sum("request_results.request_id = %(k_request_id)s" in s for s in cursor_statements)
            == 2
        )
    with pytest.raises(IntegrityError), write_transaction(engine) as conn:
        execute(conn, INSERT, _row("p"))
