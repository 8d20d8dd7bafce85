"""The test helpers' PostgreSQL schemas (server/storage/testing.py): a schema given back to
``MigratedSchemaPool`` comes out again exactly as a fresh migration leaves it, or not at all.

PostgreSQL only: skipped, with the reason, when ``BRANCHLINE_TEST_PG_DSN`` is unset.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from branchline.server import fleet_registry as fr
from branchline.server.fleet_registry import DeviceRecord
from branchline.server.storage import open_database
from branchline.server.storage.testing import (
    TEST_PG_DSN_VARIABLE,
    MigratedSchemaPool,
    SchemaShape,
    schema_shape,
    temporary_postgres_schema,
)

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class State:
    """What a test could observe of a schema: its structure, rows and sequences."""

    shape: SchemaShape
    rows: dict[str, int]  # table -> rows
    sequences: dict[str, tuple[int, bool]]  # sequence -> (last_value, is_called)


@pytest.fixture
def dsn() -> str:
    found = os.environ.get(TEST_PG_DSN_VARIABLE)
    if not found:
        pytest.skip(f"PostgreSQL case: set {TEST_PG_DSN_VARIABLE} to run it")
    return found


@pytest.fixture
def admin(dsn: str) -> Iterator[Engine]:
    engine = create_engine(dsn, poolclass=NullPool)
    yield engine
    engine.dispose()


@pytest.fixture
def pool(dsn: str) -> Iterator[MigratedSchemaPool]:
    schemas = MigratedSchemaPool(dsn)
    yield schemas
    schemas.close()


def schema_of(url: str) -> str:
    """The schema a URL of ``schema_url`` sees (its connections are named after it)."""
    return str(make_url(url).query["application_name"])


def state(admin: Engine, schema: str) -> State:
    with admin.begin() as conn:
        shape = schema_shape(conn, schema)
        rows = {
            table: int(conn.execute(text(f'SELECT count(*) FROM "{table}"')).scalar_one())
            for table in shape.tables
        }
        sequences = {
            name: tuple(conn.execute(text(f'SELECT last_value, is_called FROM "{name}"')).one())
            for name in shape.sequences
        }
    return State(shape, rows, sequences)  # type: ignore[arg-type]


def fresh_state(admin: Engine, dsn: str) -> State:
    """The state of a schema migrated just now."""
    with temporary_postgres_schema(dsn) as url:
        open_database(url).dispose()
        return state(admin, schema_of(url))


def fill(engine: Engine, admin: Engine, schema: str) -> None:
    """Rows in tables tied by foreign keys (a terminal, its devices, its events) and every
    sequence moved on."""
    devices = [DeviceRecord("printer", "escpos_printer", "DEVICE_STATUS_ONLINE")]
    for terminal in ("t1", "t2"):
        fr.register_terminal(
            engine, terminal, "north", "TERMINAL_KIND_SELF_SERVICE", "0.1.0", devices, "r1", T0
        )
    with admin.begin() as conn:
        for name in state(admin, schema).shape.sequences:
            conn.execute(text(f'SELECT nextval(\'"{schema}"."{name}"\')'))


def connections_named(admin: Engine, name: str) -> int:
    with admin.connect() as conn:
        found = conn.execute(
            text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :name"),
            {"name": name},
        ).scalar_one()
    return int(found)


def schema_exists(admin: Engine, schema: str) -> bool:
    with admin.connect() as conn:
        found = conn.execute(
            text("SELECT count(*) FROM pg_namespace WHERE nspname = :schema"), {"schema": schema}
        ).scalar_one()
    return bool(found)


def test_a_reset_schema_is_as_a_fresh_migration_leaves_it(
    pool: MigratedSchemaPool, admin: Engine, dsn: str
) -> None:
    with pool.schema() as url:
        engine = open_database(url)
        fill(engine, admin, schema_of(url))
        filled = state(admin, schema_of(url))
        engine.dispose()
    assert filled.rows["terminals"] == 2 and filled.rows["devices"] == 2
    assert filled.rows["fleet_events"] > 0
    assert filled.sequences and all(called for _, called in filled.sequences.values())

    with pool.schema() as again:
        assert (pool.created, pool.reused, pool.dropped) == (1, 1, 0)
        assert schema_of(again) != schema_of(url)
        reset = state(admin, schema_of(again))
    fresh = fresh_state(admin, dsn)
    assert reset.shape == fresh.shape
    assert reset.rows == fresh.rows == dict.fromkeys(fresh.shape.tables, 0)
    assert reset.sequences == fresh.sequences
    assert "terminals" in fresh.shape.tables and "fleet_events" in fresh.shape.tables


def test_a_test_gets_a_new_name_and_its_left_connections_are_ended(
    pool: MigratedSchemaPool, admin: Engine
) -> None:
    with pool.schema() as url:
        left = open_database(url)  # never disposed, as some tests do
        held = left.connect()
        held.begin()
        held.execute(
            text("INSERT INTO branches (branch_id, name, created_at) VALUES ('b1', 'B', now())")
        )
        # Idle in a transaction holding row and table locks, as a forgotten session would.
    old = schema_of(url)
    assert connections_named(admin, old) == 0
    assert not schema_exists(admin, old)
    with pytest.raises(DBAPIError):
        held.execute(text("SELECT 1"))
    # Its engine reconnects under the old name, which no longer has any table.
    with pytest.raises(DBAPIError, match="does not exist"), left.connect() as conn:
        conn.execute(text("SELECT count(*) FROM branches"))
    left.dispose()
    with pool.schema() as again:
        assert (pool.reused, pool.dropped) == (1, 0)
        assert state(admin, schema_of(again)).rows["branches"] == 0


@pytest.mark.parametrize(
    "change",
    [
        "CREATE TABLE extra (id integer PRIMARY KEY)",
        "ALTER TABLE terminals ADD COLUMN extra integer",
        "CREATE INDEX ix_extra ON devices (status)",
        "DELETE FROM alembic_version WHERE version_num = (SELECT min(version_num) FROM alembic_version)",
    ],
)
def test_a_schema_whose_structure_changed_is_dropped_not_reused(
    pool: MigratedSchemaPool, admin: Engine, change: str
) -> None:
    with pool.schema() as url:
        engine = open_database(url)
        with engine.begin() as conn:
            conn.execute(text(change))
        engine.dispose()
    assert (pool.created, pool.dropped) == (1, 1)
    assert not schema_exists(admin, schema_of(url))
    with pool.schema() as again:
        assert (pool.created, pool.reused) == (2, 0)
        assert state(admin, schema_of(again)).shape == pool.migrated


def test_a_lock_the_reset_cannot_get_gives_the_schema_up(dsn: str, admin: Engine) -> None:
    """A connection not named after the schema (not ended by the reset) keeps a table locked:
    the reset's wait ends at ``lock_timeout`` and the schema is dropped instead."""
    pool = MigratedSchemaPool(dsn, lock_timeout="100ms")
    holder = admin.connect()
    try:
        with pool.schema() as url:
            holder.begin()
            holder.info["pid"] = holder.execute(text("SELECT pg_backend_pid()")).scalar_one()
            holder.execute(text(f'LOCK TABLE "{schema_of(url)}".terminals IN SHARE MODE'))
            release = threading.Thread(target=release_when_drop_waits, args=(admin, holder))
            release.start()
        release.join()
        assert (pool.created, pool.dropped) == (1, 1)
        assert not schema_exists(admin, schema_of(url))
    finally:
        holder.close()
        pool.close()


def release_when_drop_waits(admin: Engine, holder: Connection) -> None:
    """Roll ``holder`` back once a DROP SCHEMA waits for its lock: the reset has given up by
    then (a generous bound keeps a broken reset from hanging the test)."""
    pid = holder.info["pid"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with admin.connect() as conn:
            waiting = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))"
                    " AND query LIKE 'DROP SCHEMA%'"
                ),
                {"pid": pid},
            ).scalar_one()
        if waiting:
            break
        time.sleep(0.05)
    holder.rollback()
