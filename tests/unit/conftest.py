"""Fixtures shared by the unit tests: the server's store on SQLite and on PostgreSQL.

``engine`` (and the ``db_url`` it opens) runs each test that asks for it twice: on a SQLite
file and on a PostgreSQL schema of its own, each already migrated to head. The
PostgreSQL case is skipped, with the reason, when ``BRANCHLINE_TEST_PG_DSN`` is unset. A test
file may override ``engine`` to add checks around it (the dispatch tests check their
invariants after each test).

Migrating a SQLite file costs half a second, paid by some 200 tests: each worker migrates one
template and every test gets a copy of it (sqlite_template.py). Migrating a PostgreSQL
schema costs 1.5–2 s: each worker keeps a pool of migrated schemas (``MigratedSchemaPool``),
and a test's schema is emptied after it (every row deleted, sequences restarted — a
migration inserts no rows) and handed to a later test under a new name. (A PostgreSQL database
copied with ``CREATE DATABASE ... TEMPLATE`` was no quicker: its drop forces a checkpoint.)
Migrations themselves are tested from an empty database in test_server_storage.py, which
asks for ``empty_db_url``; ``pg_url`` gives an empty schema too.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from branchline.server.storage import open_database
from branchline.server.storage.testing import (
    TEST_PG_DSN_VARIABLE,
    MigratedSchemaPool,
    temporary_postgres_schema,
)
from tests.unit.sqlite_template import migrated_sqlite


def _pg_dsn() -> str:
    dsn = os.environ.get(TEST_PG_DSN_VARIABLE)
    if not dsn:
        pytest.skip(f"PostgreSQL case: set {TEST_PG_DSN_VARIABLE} to run it")
    return dsn


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A URL whose connections see only an empty schema of their own, dropped afterwards."""
    with temporary_postgres_schema(_pg_dsn()) as url:
        yield url


@pytest.fixture(scope="session")
def pg_schemas() -> Iterator[MigratedSchemaPool]:
    """This worker's PostgreSQL schemas migrated to head, reused from test to test."""
    pool = MigratedSchemaPool(_pg_dsn())
    yield pool
    pool.close()


@pytest.fixture
def pg_migrated_url(pg_schemas: MigratedSchemaPool) -> Iterator[str]:
    """A URL whose connections see only a schema of their own, migrated to head and without
    a row (as a fresh migration leaves it)."""
    with pg_schemas.schema() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database's URL. The SQLite file sits in folders that do not exist yet, as on
    a new server: opening the store creates them."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'var' / 'db' / 'server.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database migrated to head, this test's own."""
    if request.param == "sqlite":
        yield migrated_sqlite(tmp_path / "var" / "db" / "server.db")
        return
    yield str(request.getfixturevalue("pg_migrated_url"))


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """The store, migrated to head, on each backend in turn."""
    db = open_database(db_url)
    yield db
    db.dispose()
