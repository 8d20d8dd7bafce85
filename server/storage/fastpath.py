"""Prebuilt statements run straight on the DBAPI cursor (SQLite and PostgreSQL/psycopg2):
the request path's SQL without SQLAlchemy's per-execution machinery.

Measured (bench/tube_profile.py, 2026-12-07): a reused Core statement still costs ~0.15 ms
of Python per ``conn.execute`` (execution context, events, result metadata) against
~0.02 ms in SQLite itself, and a withdrawal runs ~58 of them. ``execute`` compiles a
statement once per dialect and set of parameter names — with SQLAlchemy, so the SQL, the
bind and result type processing are SQLAlchemy's own — and then only binds the values,
runs the string on the connection's DBAPI cursor and processes the result columns.

Only plain statements (no expanding ``IN``, no post-compile parameters, no Python-side
column defaults) on SQLite (positional ``?``) and psycopg2 (named ``%(name)s``, its values
as a dict): anything else, and every other driver, goes through ``conn.execute`` unchanged.
On PostgreSQL the result columns' processors depend on the type the server reports (a
NUMERIC, a float), so they are chosen from the first execution's ``cursor.description``;
the statement runs through ``Connection._cursor_execute``, SQLAlchemy's own path for a
ready statement, so its events (the statement counter) and its error handling (a lost
connection invalidated) are SQLAlchemy's. A list of parameter sets goes through
``conn.execute`` there (SQLAlchemy batches an INSERT's rows into one statement).
Database errors are raised as SQLAlchemy's (``IntegrityError``, ``OperationalError``)
exactly as ``conn.execute`` raises them. On SQLite the statements run here are counted in
``branchline_sql_statements_total`` like the savepoints (``count_raw_statements``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Select, exc
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.expression import TableClause
from sqlalchemy.sql.util import find_tables

from branchline.server.storage.batch import BatchState
from branchline.server.storage.engine import batch_state, raw_counter

# Distinct (statement, parameter names) plans kept; prebuilt statements need a few dozen.
MAX_PLANS = 1024
_MISSING = object()


class FastRow(tuple):  # type: ignore[type-arg]
    """A result row: attribute access by column name, like SQLAlchemy's ``Row``."""

    __slots__ = ()
    _fields: tuple[str, ...] = ()

    @property
    def _mapping(self) -> dict[str, Any]:
        return dict(zip(self._fields, self, strict=True))


def _row_class(fields: Sequence[str]) -> type[FastRow]:
    # One class per statement, each column a property reading its item (in C, as namedtuple).
    names: dict[str, Any] = {f: property(itemgetter(i)) for i, f in enumerate(fields)}
    return type("FastRow", (FastRow,), {"__slots__": (), "_fields": tuple(fields), **names})


class FastResult:
    """The rows of one execution, with the ``Result`` methods the request path uses."""

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)

    def all(self) -> list[Any]:
        return self._rows

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def one(self) -> Any:
        if len(self._rows) != 1:
            raise exc.NoResultFound() if not self._rows else exc.MultipleResultsFound()
        return self._rows[0]

    def one_or_none(self) -> Any:
        if len(self._rows) > 1:
            raise exc.MultipleResultsFound()
        return self.first()

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None

    def scalars(self) -> FastResult:
        return FastResult([row[0] for row in self._rows], self.rowcount)


Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Plan:
    sql: str
    binds: tuple[tuple[str, Any, Processor], ...]  # (name, value when not given, processor)
    results: tuple[Processor, ...]
    row: type[FastRow] | None  # None: the statement returns no rows
    processed: tuple[tuple[int, Callable[[Any], Any]], ...]  # the columns with a processor
    reads: tuple[str, ...]  # a SELECT of these tables only: its rows may be kept in a batch's cache
    writes: str | None  # the table it writes; "" when it may write anything; None: a read
    # Every bound value given by name (no literal in the statement): one itemgetter reads
    # them, and only the values with a processor are processed.
    getter: Callable[[Mapping[str, Any]], Any] | None
    bind_processed: tuple[tuple[int, Callable[[Any], Any]], ...]
    # psycopg2: the bind names in ``parameters``' order (the DBAPI takes a dict); None for
    # a positional driver. Its result processors wait for a ``cursor.description``.
    named: tuple[str, ...] | None = None
    columns: tuple[Any, ...] = ()  # the result columns' types, for ``resolved``

    def parameters(self, given: Mapping[str, Any]) -> tuple[Any, ...]:
        if self.getter is not None:
            try:
                got = self.getter(given)
            except KeyError:
                pass  # the loop below names the missing one
            else:
                values = got if len(self.binds) > 1 else (got,)
                if not self.bind_processed:
                    return values  # type: ignore[no-any-return]
                out = list(values)
                for i, processor in self.bind_processed:
                    if out[i] is not None:
                        out[i] = processor(out[i])
                return tuple(out)
        out = []
        for name, default, process in self.binds:
            value = given.get(name, default)
            if value is _MISSING:
                raise exc.ArgumentError(f"fastpath: a value is required for {name!r}")
            out.append(process(value) if process is not None and value is not None else value)
        return tuple(out)

    def make_rows(self, raw: Sequence[Any], processed: Any = None) -> list[Any]:
        row = self.row
        assert row is not None
        if processed is None:
            processed = self.processed
        if not processed:
            return [row(r) for r in raw]
        out = []
        for r in raw:
            values = list(r)
            for i, process in processed:
                values[i] = process(values[i])
            out.append(row(values))
        return out


_plans: dict[tuple[str, int, tuple[str, ...]], tuple[Executable, _Plan | None]] = {}
# psycopg2 plans' result processors, by SQL and the column types the server reported.
_resolved: dict[tuple[str, tuple[Any, ...]], tuple[tuple[int, Callable[[Any], Any]], ...]] = {}


def _plan(conn: Connection, statement: Executable, names: tuple[str, ...]) -> _Plan | None:
    cache_key = (conn.dialect.name, id(statement), names)
    found = _plans.get(cache_key)
    if found is not None and found[0] is statement:
        return found[1]
    plan = _compile(conn, statement, names)
    if len(_plans) >= MAX_PLANS:
        _plans.clear()
    _plans[cache_key] = (statement, plan)  # the statement kept: its id stays its own
    return plan


def _compile(conn: Connection, statement: Executable, names: tuple[str, ...]) -> _Plan | None:
    dialect = conn.dialect
    compiled: Any = statement.compile(dialect=dialect, column_keys=list(names))  # type: ignore[attr-defined]
    by_name = _named(dialect.name, compiled)
    if (
        (not compiled.positional and by_name is None)
        or compiled.post_compile_params
        or compiled.literal_execute_params
        or getattr(compiled, "insert_prefetch", None)
        or getattr(compiled, "update_prefetch", None)
    ):  # (``postfetch``, a column set to a SQL expression, is only reported, never fetched)
        return None  # SQLAlchemy's execution context has work to do here
    processors = compiled._bind_processors
    binds = []
    for name in compiled.positiontup if by_name is None else by_name:
        bind = compiled.binds[name]
        default = _MISSING if bind.required or bind.callable else bind.effective_value
        if name not in names and default is _MISSING:
            return None
        binds.append((name, _MISSING if name in names else default, processors.get(name)))
    columns = compiled._result_columns
    row = _row_class([c[0] for c in columns]) if columns else None
    if by_name is None:
        results = tuple(c[3]._cached_result_processor(dialect, None) for c in columns)
    else:  # chosen by ``resolved`` from the type codes of the first execution
        results = ()
    processed = tuple((i, p) for i, p in enumerate(results) if p is not None)
    reads, writes = _effect(statement)
    all_given = all(default is _MISSING for _, default, _ in binds)
    getter = itemgetter(*(name for name, _, _ in binds)) if all_given and binds else None
    bind_processed = tuple((i, p) for i, (_, _, p) in enumerate(binds) if p is not None)
    return _Plan(
        compiled.string,
        tuple(binds),
        results,
        row,
        processed,
        reads,
        writes,
        getter,
        bind_processed,
        by_name,
        tuple(c[3] for c in columns),
    )


def _named(dialect: str, compiled: Any) -> tuple[str, ...] | None:
    """psycopg2's bind names, when its statement can take them as a plain dict."""
    if dialect != "postgresql" or compiled.positional or compiled.escaped_bind_names:
        return None
    return tuple(compiled.binds)


def resolved(conn: Connection, plan: _Plan, description: Sequence[Any]) -> Any:
    """A psycopg2 plan's result processors for the column types in ``description``."""
    codes = tuple(column[1] for column in description)
    found = _resolved.get((plan.sql, codes))
    if found is None:
        dialect = conn.dialect
        found = tuple(
            (i, p)
            for i, (kind, code) in enumerate(zip(plan.columns, codes, strict=True))
            if (p := kind._cached_result_processor(dialect, code)) is not None
        )
        _resolved[(plan.sql, codes)] = found
    return found


def _effect(statement: Executable) -> tuple[tuple[str, ...], str | None]:
    """(the tables a SELECT of plain tables reads, else none; the table a statement writes,
    "" for any, None for none)."""
    if isinstance(statement, Select):
        found = find_tables(statement, check_columns=True)
        plain = bool(found) and all(isinstance(t, TableClause) for t in found)
        return (tuple(sorted({t.name for t in found})) if plain else ()), None
    if isinstance(statement, UpdateBase):
        table = statement.table
        return (), table.name if isinstance(table, TableClause) else ""
    return (), ""


def execute(
    conn: Connection,
    statement: Executable,
    params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
) -> Any:
    """``conn.execute(statement, params)``, on the DBAPI cursor where it can be (SQLite).

    ``statement`` should be built once (``storage.prebuilt``): its plan is kept by identity.
    A list of parameter sets runs as one ``executemany`` (no rows come back)."""
    dialect = conn.dialect.name
    if dialect != "sqlite" and (dialect != "postgresql" or conn.dialect.driver != "psycopg2"):
        return conn.execute(statement, params)  # type: ignore[call-overload]
    many = isinstance(params, list)
    if many and dialect != "sqlite":
        return conn.execute(statement, params)  # type: ignore[call-overload]
    sets: Sequence[Mapping[str, Any]] = params if many else [params or {}]  # type: ignore[assignment,list-item]
    if not sets:
        return conn.execute(statement, params)  # type: ignore[call-overload]
    plan = _plan(conn, statement, tuple(sets[0]))
    if plan is None or (many and plan.row is not None):
        return conn.execute(statement, params)  # type: ignore[call-overload]
    if plan.named is not None:
        return _run_named(conn, plan, sets[0])
    state = batch_state(conn)
    if state is None:
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            return _run(conn, cursor, plan, sets, many)
        finally:
            cursor.close()
    if plan.writes is not None:
        state.before_write(plan.writes or None)
        return _run(conn, state.cursor, plan, sets, many, state=state)
    if not plan.reads:
        return _run(conn, state.cursor, plan, sets, many, state=state)
    values = plan.parameters(sets[0])
    cache_key = (plan.sql, values)
    try:
        rows = state.cached(cache_key)
    except TypeError:  # a value that cannot be a key: read it, keep nothing
        return _run(conn, state.cursor, plan, sets, many, values, state)
    if rows is None:
        rows = _run(conn, state.cursor, plan, sets, many, values, state)._rows
        state.keep(plan.reads, cache_key, rows)
    return FastResult(list(rows), -1)


def _run(
    conn: Connection,
    cursor: Any,
    plan: _Plan,
    sets: Sequence[Mapping[str, Any]],
    many: bool,
    values: Any = None,
    state: BatchState | None = None,
) -> FastResult:
    try:
        if many:
            values = [plan.parameters(p) for p in sets]
            cursor.executemany(plan.sql, values)
        else:
            if values is None:
                values = plan.parameters(sets[0])
            cursor.execute(plan.sql, values)
        raw = cursor.fetchall() if plan.row is not None else None
        rowcount = cursor.rowcount
    except sqlite3.Error as error:
        raise exc.DBAPIError.instance(
            plan.sql, values, error, sqlite3.Error, dialect=conn.dialect
        ) from error
    if state is not None:  # counted with the batch's, told to the metrics once per batch
        state.statements += 1
    else:
        counter = raw_counter(conn.engine)
        if counter is not None:
            counter(1)
    return FastResult(plan.make_rows(raw) if raw is not None else [], rowcount)


def _run_named(conn: Connection, plan: _Plan, given: Mapping[str, Any]) -> FastResult:
    values = plan.parameters(given)
    parameters = dict(zip(plan.named or (), values, strict=True))
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        # SQLAlchemy's own path for a ready statement: its events and error handling.
        conn._cursor_execute(cursor, plan.sql, parameters)
        if plan.row is None:
            return FastResult([], cursor.rowcount)
        raw = cursor.fetchall()
        processed = resolved(conn, plan, cursor.description)
        return FastResult(plan.make_rows(raw, processed), cursor.rowcount)
    finally:
        cursor.close()


def remember(
    conn: Connection, statement: Executable, params: Mapping[str, Any], rows: Sequence[Any]
) -> None:
    """Tell a SQLite batch's read cache that ``execute(conn, statement, params)`` would now
    return ``rows`` (a row just written and returned by ``RETURNING``), so that read costs
    no statement. Nothing happens outside a SQLite batch, or when the rows' columns are not
    the read's."""
    if conn.dialect.name != "sqlite":
        return
    state = batch_state(conn)
    if state is None:
        return
    plan = _plan(conn, statement, tuple(params))
    if plan is None or not plan.reads or plan.row is None:
        return
    fields = plan.row._fields
    if any(getattr(r, "_fields", None) != fields for r in rows):
        return
    values = plan.parameters(params)
    state.keep(plan.reads, (plan.sql, values), [plan.row(r) for r in rows])
