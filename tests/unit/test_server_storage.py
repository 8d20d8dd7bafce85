"""Storage: migrations on a fresh SQLite and PostgreSQL, engine settings, schema/migration parity."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.exc import StatementError

from branchline.server.storage import engine as storage_engine
from branchline.server.storage import metadata, open_database, terminals, write_transaction

TABLES = {"alembic_version", "devices", "fleet_events", "terminals"}


@pytest.fixture
def db_url(empty_db_url: str) -> str:
    """Migrations are what these tests check: each starts from an empty database, not the
    migrated copy the other unit tests get (conftest)."""
    return empty_db_url


def _head() -> set[str]:
    """Every head: capabilities keep their own migration branches off the fleet's root."""
    return set(ScriptDirectory.from_config(storage_engine.alembic_config()).get_heads())


def _version(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads())


def test_migrations_are_found_on_disk() -> None:
    assert (storage_engine.MIGRATIONS_DIR / "env.py").is_file()
    assert (storage_engine.MIGRATIONS_DIR / "versions" / "0001_fleet.py").is_file()
    heads = _head()
    assert "0005_calls" not in heads  # tube transactions (0006_tube) build on it
    script = ScriptDirectory.from_config(storage_engine.alembic_config())
    history = {r.revision for r in script.iterate_revisions(tuple(heads), "base")}
    assert {"0002_dispatch", "0005_calls", "0006_tube"} <= history
    assert "0001" not in _head()  # the fleet root has later revisions


def test_fresh_database_is_migrated_to_head(db_url: str) -> None:
    engine = open_database(db_url)
    try:
        assert TABLES <= set(inspect(engine).get_table_names())
        assert _version(engine) == _head()
    finally:
        engine.dispose()
    # Opening again finds nothing to do.
    engine = open_database(db_url)
    try:
        assert _version(engine) == _head()
    finally:
        engine.dispose()


def test_schema_module_matches_migrations(db_url: str) -> None:
    engine = open_database(db_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
    finally:
        engine.dispose()


def test_downgrade_and_upgrade_again(db_url: str) -> None:
    engine = open_database(db_url)
    try:
        config = storage_engine.alembic_config()
        with write_transaction(engine) as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        storage_engine.upgrade_to_head(engine)
        assert TABLES <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


# Each replica is its own process; all start migrating at the same instant.
_REPLICA = """
import sys, time
from branchline.server.storage import open_database
url, start_at = sys.argv[1], float(sys.argv[2])
time.sleep(max(0.0, start_at - time.time()))
open_database(url).dispose()
"""


def test_replicas_starting_together_all_succeed(db_url: str) -> None:
    """Without the advisory lock (PostgreSQL) or BEGIN IMMEDIATE (SQLite) some would fail."""
    start_at = str(time.time() + 2.5)
    replicas = [
        subprocess.Popen(
            [sys.executable, "-c", _REPLICA, db_url, start_at],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(4)
    ]
    outputs = [replica.communicate(timeout=60)[0].decode() for replica in replicas]
    assert [replica.returncode for replica in replicas] == [0] * 4, outputs
    engine = open_database(db_url)
    try:
        assert _version(engine) == _head()
    finally:
        engine.dispose()


def test_sqlite_settings_and_parent_directory(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "server.db"
    engine = open_database(f"sqlite:///{path}")
    try:
        assert path.is_file()
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()


def test_in_memory_sqlite_keeps_its_schema() -> None:
    engine = open_database("sqlite://")
    try:
        assert TABLES <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_timestamps_are_aware_utc_and_naive_ones_refused(db_url: str) -> None:
    engine = open_database(db_url)
    try:
        local = datetime(2025, 1, 2, 12, 0, tzinfo=UTC).astimezone()
        row = {
            "terminal_id": "t1",
            "branch": "b",
            "kind": "k",
            "agent_version": "1",
            "service_state": "s",
            "online": True,
            "connected_replica": None,
            "registered_at": local,
            "last_seen_at": local,
        }
        with write_transaction(engine) as conn:
            conn.execute(terminals.insert(), row)
        with engine.connect() as conn:
            stored = conn.execute(select(terminals.c.registered_at)).scalar_one()
        assert stored == local
        assert stored.tzinfo == UTC
        with (
            pytest.raises(StatementError, match="naive datetime"),
            write_transaction(engine) as conn,
        ):
            conn.execute(
                terminals.insert(),
                {**row, "terminal_id": "t2", "registered_at": datetime(2025, 1, 2)},
            )
    finally:
        engine.dispose()


def test_write_transaction_rolls_back_on_error(db_url: str) -> None:
    engine = open_database(db_url)
    try:
        with pytest.raises(RuntimeError), write_transaction(engine) as conn:
            conn.execute(text("DELETE FROM alembic_version"))
            raise RuntimeError("boom")
        assert _version(engine) == _head()
    finally:
        engine.dispose()
