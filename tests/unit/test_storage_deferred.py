"""``storage.deferred``: a PostgreSQL batch's savepoints go in front of the next statement
instead of on their own, and still undo exactly what ran under them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, bindparam, event, select, text, update
from sqlalchemy.exc import DataError

from branchline.server.ledger.schema import request_results
from branchline.server.storage import open_database
from branchline.server.storage.engine import (
    batch_transaction,
    count_raw_statements,
    savepoint,
    write_transaction,
)

AT = datetime(2026, 12, 7, 13, 0, tzinfo=UTC)


@pytest.fixture
def pg(pg_migrated_url: str) -> Iterator[Engine]:
    engine = open_database(pg_migrated_url)
    yield engine
    engine.dispose()


def _row(request_id: str) -> dict[str, Any]:
    return {
        "terminal_id": "T-1",
        "request_id": request_id,
        "kind": "tube_open",
        "response": b"r",
        "created_at": AT,
    }


def _insert(conn: Any, request_id: str) -> None:
    conn.execute(request_results.insert(), _row(request_id))


def _stored(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        query = select(request_results.c.request_id).order_by(request_results.c.request_id)
        return list(conn.execute(query).scalars())


def _sent(engine: Engine) -> list[str]:
    """Every statement as it reaches psycopg2 (after the savepoints were put in front)."""
    sent: list[str] = []
    event.listen(engine, "after_cursor_execute", lambda *a: sent.append(a[2]))
    return sent


def _unit(conn: Any, work: Any) -> BaseException | None:
    """One unit of work as the applier runs it: under a savepoint, its failure its own."""
    try:
        with savepoint(conn):
            work(conn)
    except Exception as exc:
        return exc
    return None


def _failing_read(conn: Any) -> None:
    _insert(conn, "b")
    conn.execute(text("SELECT CAST(:v AS integer)"), {"v": "not a number"})


def test_a_failed_statement_undoes_its_unit_alone(pg: Engine) -> None:
    with batch_transaction(pg) as conn:
        assert _unit(conn, lambda c: _insert(c, "a")) is None
        assert isinstance(_unit(conn, _failing_read), DataError)
        # The transaction is usable again: rolled back to the failed unit's savepoint.
        assert _unit(conn, lambda c: _insert(c, "c")) is None
    assert _stored(pg) == ["a", "c"]


def test_a_failure_in_python_after_statements_undoes_them(pg: Engine) -> None:
    def fails(conn: Any) -> None:
        _insert(conn, "b")
        raise RuntimeError("the unit's own check failed")

    with batch_transaction(pg) as conn:
        _unit(conn, lambda c: _insert(c, "a"))
        assert isinstance(_unit(conn, fails), RuntimeError)
        _unit(conn, lambda c: _insert(c, "c"))
    assert _stored(pg) == ["a", "c"]


def test_a_nested_write_that_fails_leaves_its_outer_unit(pg: Engine) -> None:
    def outer(conn: Any) -> None:
        _insert(conn, "a")
        with pytest.raises(DataError), write_transaction(pg) as inner:
            _failing_read(inner)  # inserts "b", then fails: "b" goes, "a" stays
        _insert(conn, "c")

    with batch_transaction(pg) as conn:
        assert _unit(conn, outer) is None
    assert _stored(pg) == ["a", "c"]


def test_savepoints_ride_with_the_next_statement(pg: Engine) -> None:
    counted: list[int] = []
    count_raw_statements(pg, counted.append)
    with batch_transaction(pg) as conn:
        sent = _sent(pg)
        for request_id in ("a", "b", "c"):
            _unit(conn, lambda c, r=request_id: _insert(c, r))
        _unit(conn, lambda c: None)  # nothing ran under it: never sent at all
    inserts = [s for s in sent if "INSERT INTO request_results" in s]
    assert len(inserts) == 3
    assert inserts[0].startswith("SAVEPOINT ")
    # The next unit's savepoint travels with the previous one's release.
    assert all(s.startswith("RELEASE SAVEPOINT ") and "; SAVEPOINT " in s for s in inserts[1:])
    assert not [s for s in sent if s.strip().startswith("SAVEPOINT") and "INSERT" not in s]
    # Three SAVEPOINTs and two RELEASEs were sent (the last RELEASE: the COMMIT's business).
    assert sum(counted) == 5
    assert _stored(pg) == ["a", "b", "c"]


def test_a_statement_run_per_parameter_set_does_not_repeat_them(pg: Engine) -> None:
    with write_transaction(pg) as conn:
        for request_id in ("a", "b"):
            _insert(conn, request_id)
    rename = (
        update(request_results)
        .where(request_results.c.request_id == bindparam("old"))
        .values(kind=bindparam("new_kind"))
    )
    counted: list[int] = []
    count_raw_statements(pg, counted.append)
    with batch_transaction(pg) as conn:
        sent = _sent(pg)
        _unit(
            conn,
            lambda c: c.execute(
                rename, [{"old": "a", "new_kind": "x"}, {"old": "b", "new_kind": "y"}]
            ),
        )
    # The SAVEPOINT went on its own, once, before the UPDATE (its RELEASE: the COMMIT's).
    assert sum(counted) == 1
    assert [s for s in sent if "UPDATE" in s and "SAVEPOINT" not in s]
    with pg.connect() as conn:
        kinds = conn.execute(select(request_results.c.kind).order_by(request_results.c.request_id))
        assert list(kinds.scalars()) == ["x", "y"]
