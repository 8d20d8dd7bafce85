"""Test helpers: a throw-away PostgreSQL schema per test, so parallel tests never collide."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

# The environment variable naming the PostgreSQL database tests may use.
TEST_PG_DSN_VARIABLE = "BRANCHLINE_TEST_PG_DSN"


@contextmanager
def temporary_postgres_schema(dsn: str) -> Iterator[str]:
    """Create an empty schema and yield a URL whose connections see only it.

    The schema is dropped afterwards; dispose of every engine on the URL first, or the
    drop waits for their connections.
    """
    schema = f"test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(dsn, poolclass=NullPool)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        # libpq's "options" sets search_path for every connection of the yielded URL.
        url = make_url(dsn).update_query_dict({"options": f"-csearch_path={schema}"})
        try:
            yield url.render_as_string(hide_password=False)
        finally:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()
