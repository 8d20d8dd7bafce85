"""Test helpers: PostgreSQL schemas of a test's own, so parallel tests never collide.

``temporary_postgres_schema`` gives an empty schema, dropped afterwards. ``MigratedSchemaPool``
gives schemas already migrated to head without a migration per test (Alembic costs 1.5–2 s a
schema): a schema given back is reset to exactly what a migration makes — migrations insert
no rows, so that is every table emptied and every sequence restarted — and handed out again.
Each hand-out is under a new name, so a test's leftover engines (or threads) still pointing at
the old one find nothing, as if it had been dropped.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from branchline.server.storage.engine import open_database

# The environment variable naming the PostgreSQL database tests may use.
TEST_PG_DSN_VARIABLE = "BRANCHLINE_TEST_PG_DSN"

# How long the reset waits for a table lock before giving the schema up (dropping it).
RESET_LOCK_TIMEOUT = "3s"
# How long terminate_connections waits for the backends it ended to exit.
TERMINATE_WAIT_SECONDS = 5.0


def new_schema_name() -> str:
    """A schema name no other test (or other helper on the same server) uses."""
    return f"test_{uuid.uuid4().hex}"


def schema_url(dsn: str, schema: str) -> str:
    """``dsn`` with every connection seeing only ``schema`` and named after it.

    libpq's ``options`` sets search_path; ``application_name`` lets the owner find (and end)
    the connections a test left open.
    """
    url = make_url(dsn).update_query_dict(
        {"options": f"-csearch_path={schema}", "application_name": schema}
    )
    return url.render_as_string(hide_password=False)


@contextmanager
def temporary_postgres_schema(dsn: str) -> Iterator[str]:
    """Create an empty schema and yield a URL whose connections see only it.

    The schema is dropped afterwards, after ending the connections still open on it.
    """
    schema = new_schema_name()
    admin = create_engine(dsn, poolclass=NullPool)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            yield schema_url(dsn, schema)
        finally:
            drop_schema(admin, schema)
    finally:
        admin.dispose()


def drop_schema(admin: Engine, schema: str, tagged: str | None = None) -> None:
    """End the connections named ``tagged`` (default: ``schema``, as ``schema_url`` names
    them) and drop ``schema`` with everything in it."""
    with admin.begin() as conn:
        terminate_connections(conn, tagged or schema)
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


def terminate_connections(conn: Connection, application_name: str) -> int:
    """End every other backend named ``application_name`` and wait for each to exit (its
    transaction rolled back, its locks released). Returns how many there were."""
    ended = conn.execute(
        text(
            "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = :name AND pid <> pg_backend_pid()"
        ),
        {"name": application_name},
    ).all()
    pids = [pid for pid, _ in ended]
    # Polled rather than pg_terminate_backend's own wait, which sleeps 100 ms at a time.
    deadline = time.monotonic() + TERMINATE_WAIT_SECONDS
    while pids and time.monotonic() < deadline:
        time.sleep(0.002)
        # pg_stat_activity is read once per transaction unless told to read it again.
        conn.execute(text("SELECT pg_stat_clear_snapshot()"))
        pids = list(
            conn.execute(
                text("SELECT pid FROM pg_stat_activity WHERE pid = ANY(:pids)"), {"pids": pids}
            ).scalars()
        )
    return len(ended)


class MigratedSchemaPool:
    """Schemas migrated to head, reused from test to test (one pool per test worker).

    ``schema()`` yields a URL on an idle schema, or on a new one migrated for it when none is
    idle; afterwards the schema is reset and put back, or dropped when it cannot be reset to
    the migrated state (its structure changed, or a lock outlived ``lock_timeout``).
    """

    def __init__(self, dsn: str, lock_timeout: str = RESET_LOCK_TIMEOUT) -> None:
        self._dsn = dsn
        self._lock_timeout = lock_timeout
        # Its connections are not named after a schema: never ended by terminate_connections.
        self._admin = create_engine(dsn, pool_size=1, max_overflow=1)
        self._idle: list[str] = []
        self._migrated: SchemaShape | None = None  # what a fresh migration makes
        self.created = 0  # schemas migrated
        self.reused = 0  # hand-outs of a reset schema
        self.dropped = 0  # schemas given up at a reset

    @property
    def migrated(self) -> SchemaShape | None:
        """The shape a migration to head makes (None until the first schema is made)."""
        return self._migrated

    @contextmanager
    def schema(self) -> Iterator[str]:
        """A URL whose connections see only a schema migrated to head, this caller's alone."""
        if self._idle:
            schema = self._idle.pop()
            self.reused += 1
        else:
            schema = self._create()
        try:
            yield schema_url(self._dsn, schema)
        finally:
            renamed = self._reset(schema)
            if renamed is not None:
                self._idle.append(renamed)

    def close(self) -> None:
        """Drop every idle schema."""
        while self._idle:
            drop_schema(self._admin, self._idle.pop())
        self._admin.dispose()

    def _create(self) -> str:
        schema = new_schema_name()
        with self._admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            open_database(schema_url(self._dsn, schema)).dispose()
            if self._migrated is None:
                with self._admin.begin() as conn:
                    self._migrated = schema_shape(conn, schema)
        except BaseException:
            drop_schema(self._admin, schema)
            raise
        self.created += 1
        return schema

    def _reset(self, schema: str) -> str | None:
        """Reset ``schema`` under a new name and return it, or drop it and return None."""
        renamed = new_schema_name()
        try:
            # Renamed first, and committed: an engine the test left behind that reconnects
            # from now on finds no tables; those connected already are ended next.
            with self._admin.begin() as conn:
                conn.execute(text(f"SET LOCAL lock_timeout = '{self._lock_timeout}'"))
                conn.execute(text(f'ALTER SCHEMA "{schema}" RENAME TO "{renamed}"'))
        except DBAPIError:
            self._give_up(schema, schema)
            return None
        try:
            with self._admin.begin() as conn:
                terminate_connections(conn, schema)
                migrated = self._migrated
                if migrated is None or schema_shape(conn, renamed) != migrated:
                    raise _ChangedSchema(schema)
                conn.execute(text(f"SET LOCAL lock_timeout = '{self._lock_timeout}'"))
                empty_schema(conn, renamed, migrated)
        except (_ChangedSchema, DBAPIError):
            self._give_up(renamed, schema)
            return None
        return renamed

    def _give_up(self, schema: str, tagged: str) -> None:
        """Drop ``schema``, whose connections are named ``tagged`` (its name at hand-out)."""
        self.dropped += 1
        drop_schema(self._admin, schema, tagged)


class _ChangedSchema(Exception):
    """A test changed its schema's structure: it is no longer what a migration makes."""


@dataclass(frozen=True)
class SchemaShape:
    """A schema's structure and migration version, comparable across schema names."""

    fingerprint: tuple[str, ...]  # one line per object (see _SHAPE), sorted
    tables: tuple[str, ...]  # but Alembic's version table
    sequences: tuple[str, ...]


# One row per object of the schema: its namespace's dependents (tables, sequences, views,
# types, functions) found through pg_depend's index, then the tables' columns (type,
# nullability, default), indexes, constraints and triggers, and the sequences' settings.
# (Filtering pg_class on relnamespace reads the whole catalog: 45 MB on the shared server,
# where autovacuum is off and every migrated-and-dropped schema left its rows behind.)
_SHAPE = """
WITH members AS (
    SELECT d.classid, d.objid FROM pg_depend d
    JOIN pg_namespace n ON n.oid = d.refobjid AND n.nspname = :schema
    WHERE d.refclassid = 'pg_namespace'::regclass
),
rels AS (
    SELECT c.oid, c.relname, c.relkind FROM members m JOIN pg_class c ON c.oid = m.objid
    WHERE m.classid = 'pg_class'::regclass
)
SELECT 'relation ' || r.relkind::text || ' ' || r.relname FROM rels r
UNION ALL
SELECT 'object ' || pg_describe_object(m.classid, m.objid, 0) FROM members m
    WHERE m.classid <> 'pg_class'::regclass
UNION ALL
SELECT 'column ' || r.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
    || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
    || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
    FROM rels r JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE NOT a.attisdropped
UNION ALL
SELECT 'index ' || pg_get_indexdef(i.indexrelid) FROM rels r JOIN pg_index i ON i.indrelid = r.oid
UNION ALL
SELECT 'constraint ' || r.relname || ' ' || c.conname || ' ' || pg_get_constraintdef(c.oid)
    FROM rels r JOIN pg_constraint c ON c.conrelid = r.oid
UNION ALL
SELECT 'trigger ' || pg_get_triggerdef(t.oid) FROM rels r JOIN pg_trigger t ON t.tgrelid = r.oid
    WHERE NOT t.tgisinternal
UNION ALL
SELECT 'function ' || p.proname || ' ' || md5(p.prosrc) FROM members m
    JOIN pg_proc p ON p.oid = m.objid WHERE m.classid = 'pg_proc'::regclass
UNION ALL
SELECT 'sequence ' || r.relname || ' ' || s.seqtypid::regtype::text || ' ' || s.seqstart
    || ' ' || s.seqincrement FROM rels r JOIN pg_sequence s ON s.seqrelid = r.oid
"""


def schema_shape(conn: Connection, schema: str) -> SchemaShape:
    """``schema``'s structure and migration version, read in ``conn``'s transaction.

    The transaction's search_path is set to ``schema``, so that references print unqualified
    (those printed qualified anyway lose the prefix here).
    """
    conn.execute(text("SELECT set_config('search_path', :schema, true)"), {"schema": schema})
    found = conn.execute(text(_SHAPE), {"schema": schema}).scalars()
    rows = sorted(str(row).replace(f'"{schema}".', "").replace(f"{schema}.", "") for row in found)
    relations = [row.split(" ", 2)[1:] for row in rows if row.startswith("relation ")]
    tables = tuple(name for kind, name in relations if kind == "r" and name != "alembic_version")
    if ["r", "alembic_version"] in relations:
        versions = conn.execute(text("SELECT version_num FROM alembic_version")).scalars()
        rows.extend(sorted(f"version {version}" for version in versions))
    return SchemaShape(
        fingerprint=tuple(rows),
        tables=tables,
        sequences=tuple(name for kind, name in relations if kind == "S"),
    )


def empty_schema(conn: Connection, schema: str, shape: SchemaShape) -> None:
    """Delete every row of ``schema`` (of ``shape``) but Alembic's version and restart every
    sequence, in one round trip.

    DELETE rather than TRUNCATE: on these small tables TRUNCATE, which gives every table and
    index new files, cost ten times as much (0.3–0.9 s for 60 tables). Foreign keys are not
    checked meanwhile (``session_replication_role``): every table ends empty.
    """
    statements = ["SET LOCAL session_replication_role = replica"]
    statements += [f'DELETE FROM "{schema}"."{table}"' for table in shape.tables]
    if shape.sequences:
        # As a new sequence: its start value next, not yet called.
        names = ", ".join(f'\'"{schema}"."{name}"\'::regclass' for name in shape.sequences)
        statements.append(
            f"SELECT setval(seqrelid, seqstart, false) FROM pg_sequence WHERE seqrelid IN ({names})"
        )
    statements.append("SET LOCAL session_replication_role = DEFAULT")
    conn.exec_driver_sql(";\n".join(statements))
