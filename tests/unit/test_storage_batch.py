"""A group-commit batch on SQLite (``storage/batch.py``): reads answered from the batch's
cache until their table is written, and savepoints issued only once something is written
under them — with the same outcome as eager savepoints: what a failed savepoint wrote is
undone alone, what its neighbours wrote stays."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    select,
    update,
)

from branchline.server.storage import open_database
from branchline.server.storage.engine import (
    batch_state,
    batch_transaction,
    count_raw_statements,
    savepoint,
    write_transaction,
)
from branchline.server.storage.fastpath import execute, remember
from branchline.server.storage.prebuilt import by_key, key, update_by_key
from tests.unit.sqlite_template import migrated_sqlite

meta = MetaData()
rows = Table(
    "batch_probe",
    meta,
    Column("id", Integer, primary_key=True),
    Column("name", String(20), nullable=False),
)
BY_ID = by_key(rows, ("id",))
BY_ID_LOCKED = by_key(rows, ("id",), lock=True)  # the same SQL on SQLite: shares the cache
SET_NAME = update_by_key(rows, "id")
SET_NAME_RETURNING = update_by_key(rows, "id", returning=True)
INSERT = rows.insert()
tags = Table(
    "batch_probe_tag",
    meta,
    Column("id", Integer, primary_key=True),
    Column("tag", String(20), nullable=False),
)
# A join, as the back office's teller-and-skill lookup: kept until either table is written.
NAME_AND_TAG = (
    select(rows.c.name, tags.c.tag)
    .select_from(rows.outerjoin(tags, tags.c.id == rows.c.id))
    .where(rows.c.id == bindparam(key("id")))
)
SET_TAG = update_by_key(tags, "id")


class Boom(Exception):
    pass


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = open_database(migrated_sqlite(tmp_path / "batch.db"))
    meta.create_all(engine)
    with write_transaction(engine) as conn:
        conn.execute(INSERT, [{"id": 1, "name": "one"}, {"id": 2, "name": "two"}])
        conn.execute(tags.insert(), [{"id": 1, "tag": "a"}])
    yield engine
    engine.dispose()


@pytest.fixture
def statements(engine: Engine) -> list[int]:
    """The statements run on the DBAPI cursor (fastpath and savepoints), as counted."""
    counted: list[int] = []
    count_raw_statements(engine, counted.append)
    return counted


def _ran(conn: Connection, statements: list[int]) -> int:
    """The statements counted so far (a batch tells the counter once it ends: flushed here)."""
    state = batch_state(conn)
    if state is not None:
        state.flush_count()
    return sum(statements)


def _name(conn: object, row_id: int, statement: object = BY_ID) -> str | None:
    row = execute(conn, statement, {key("id"): row_id}).first()  # type: ignore[arg-type]
    return None if row is None else str(row.name)


def _committed(engine: Engine) -> dict[int, str]:
    with engine.connect() as conn:
        return {r.id: r.name for r in conn.execute(select(rows))}


def test_a_read_is_answered_from_the_cache_until_its_table_is_written(
    engine: Engine, statements: list[int]
) -> None:
    with batch_transaction(engine) as conn:
        assert _name(conn, 1) == "one"
        ran = _ran(conn, statements)
        assert _name(conn, 1) == "one" and _name(conn, 1, BY_ID_LOCKED) == "one"
        assert _ran(conn, statements) == ran  # answered from the cache
        assert _name(conn, 3) is None
        execute(conn, SET_NAME, {"name": "uno", key("id"): 1})  # fastpath write
        assert _name(conn, 1) == "uno" and _ran(conn, statements) > ran
        # A write SQLAlchemy runs (not the fastpath) drops the cached rows too.
        conn.execute(update(rows).where(rows.c.id == 1).values(name="eins"))
        conn.execute(INSERT, {"id": 3, "name": "three"})
        assert _name(conn, 1) == "eins" and _name(conn, 3) == "three"
    assert _committed(engine) == {1: "eins", 2: "two", 3: "three"}


def _name_and_tag(conn: Connection, row_id: int) -> tuple[str, str | None]:
    name, tag = execute(conn, NAME_AND_TAG, {key("id"): row_id}).one()
    return str(name), tag


def test_a_join_is_kept_until_either_of_its_tables_is_written(
    engine: Engine, statements: list[int]
) -> None:
    with batch_transaction(engine) as conn:
        assert _name_and_tag(conn, 1) == ("one", "a")
        ran = _ran(conn, statements)
        assert _name_and_tag(conn, 1) == ("one", "a")
        assert _ran(conn, statements) == ran  # answered from the cache
        execute(conn, SET_TAG, {"tag": "b", key("id"): 1})  # the joined table
        assert _name_and_tag(conn, 1) == ("one", "b")
        execute(conn, SET_NAME, {"name": "uno", key("id"): 1})  # the first table
        assert _name_and_tag(conn, 1) == ("uno", "b")
        ran = _ran(conn, statements)
        assert _name_and_tag(conn, 2) == ("two", None)
        assert _name_and_tag(conn, 2) == ("two", None) and _ran(conn, statements) == ran + 1


def test_a_returned_row_seeds_the_cache(engine: Engine, statements: list[int]) -> None:
    with batch_transaction(engine) as conn:
        row = execute(conn, SET_NAME_RETURNING, {"name": "uno", key("id"): 1}).one()
        remember(conn, BY_ID, {key("id"): 1}, [row])
        ran = _ran(conn, statements)
        assert _name(conn, 1) == "uno" and _ran(conn, statements) == ran


def test_savepoints_cost_nothing_until_something_is_written(
    engine: Engine, statements: list[int]
) -> None:
    with batch_transaction(engine) as conn:
        with savepoint(conn), savepoint(conn):
            assert _name(conn, 2) == "two"
        assert _ran(conn, statements) == 1  # the read alone
        with savepoint(conn), savepoint(conn):
            execute(conn, SET_NAME, {"name": "zwei", key("id"): 2})
        # One SAVEPOINT for both (nothing was written between their starts), one RELEASE.
        assert _ran(conn, statements) == 1 + 3
        execute(conn, SET_NAME, {"name": "two", key("id"): 2})
    assert sum(statements) == 1 + 3 + 1  # the rest told to the counter as the batch ended


def test_a_failed_inner_savepoint_undoes_only_its_own_writes(engine: Engine) -> None:
    with batch_transaction(engine) as conn:
        with savepoint(conn):  # the unit
            with pytest.raises(Boom), savepoint(conn):  # shares the unit's SAVEPOINT
                execute(conn, SET_NAME, {"name": "lost", key("id"): 1})
                assert _name(conn, 1) == "lost"
                raise Boom
            assert _name(conn, 1) == "one"  # rolled back, and the cache knows it
            execute(conn, SET_NAME, {"name": "kept", key("id"): 2})
            with pytest.raises(Boom), savepoint(conn):  # after a write: a SAVEPOINT of its own
                execute(conn, INSERT, {"id": 4, "name": "lost"})
                raise Boom
            assert _name(conn, 2) == "kept" and _name(conn, 4) is None
        with pytest.raises(Boom), savepoint(conn):  # a whole unit failing
            execute(conn, INSERT, {"id": 5, "name": "lost"})
            with savepoint(conn):
                execute(conn, SET_NAME, {"name": "lost", key("id"): 1})
            raise Boom
        with savepoint(conn):  # its neighbour goes on
            execute(conn, INSERT, {"id": 6, "name": "six"})
    assert _committed(engine) == {1: "one", 2: "kept", 6: "six"}
