"""Fixtures shared by the unit tests: the server's store on SQLite and on PostgreSQL.

``engine`` (and the ``db_url`` it opens) runs each test that asks for it twice: on a fresh
SQLite file and on a throw-away PostgreSQL schema. The PostgreSQL case is skipped, with the
reason, when ``BRANCHLINE_TEST_PG_DSN`` is unset. A test file may override ``engine`` to add
checks around it (the dispatch tests check their invariants after each test).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from branchline.server.storage import open_database
from branchline.server.storage.testing import TEST_PG_DSN_VARIABLE, temporary_postgres_schema


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A URL whose connections see only an empty schema of their own, dropped afterwards."""
    dsn = os.environ.get(TEST_PG_DSN_VARIABLE)
    if not dsn:
        pytest.skip(f"PostgreSQL case: set {TEST_PG_DSN_VARIABLE} to run it")
    with temporary_postgres_schema(dsn) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database's URL. The SQLite file sits in folders that do not exist yet, as on
    a new server: opening the store creates them."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'var' / 'db' / 'server.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """The store, migrated to head, on each backend in turn."""
    db = open_database(db_url)
    yield db
    db.dispose()
