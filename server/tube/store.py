"""Reads and writes of the tube tables, inside the caller's transaction.

Lock order: the one tube_transactions row a change is about (``FOR UPDATE``), then the
inserts. The change's ``tube_events`` rows are inserted when the transaction (the
applier's whole batch) commits, under the log's advisory lock (``storage.commit_order``),
which makes event ids visible in order so that tailing watchers miss none. Ledger calls
never run inside these transactions (they take their own, and are idempotent on their
reference).
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine, Row, and_, bindparam, select
from sqlalchemy.exc import OperationalError

from branchline.server.dispatch.schema import teller_skills, tellers
from branchline.server.ledger.schema import cards, request_results
from branchline.server.storage import commit_order
from branchline.server.storage.engine import write_transaction
from branchline.server.storage.fastpath import execute, remember
from branchline.server.storage.prebuilt import by_key, key, update_by_key
from branchline.server.storage.schema import terminals
from branchline.server.tube import model as m
from branchline.server.tube.model import BACK_OFFICE_SKILL
from branchline.server.tube.schema import tube_events, tube_incidents, tube_transactions

# Arbitrary constant naming the "append to tube_events" advisory lock in PostgreSQL.
# (commit_order takes it just before COMMIT: do not change it while old replicas run.)
EVENT_LOG_LOCK_KEY = 0x6272_6C6E_7475_6265  # "brlntube"
RETRYABLE_PGCODES = ("40P01", "40001")
ATTEMPTS = 5

P = ParamSpec("P")
R = TypeVar("R")


def retrying(fn: Callable[P, R]) -> Callable[P, R]:
    """Run the whole operation again when the database aborted it as a deadlock victim."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return fn(*args, **kwargs)
            except OperationalError as exc:
                code = getattr(exc.orig, "pgcode", None)
                retry = code in RETRYABLE_PGCODES or "database is locked" in str(exc.orig)
                if attempt == ATTEMPTS or not retry:
                    raise
                time.sleep(random.uniform(0, 0.02 * attempt))
        raise AssertionError("unreachable")

    return wrapper


@dataclass
class Tx:
    """One write transaction: its connection, its time, and the events it appends."""

    conn: Connection
    now: datetime
    events: list[dict[str, Any]] = field(default_factory=list)

    def event(self, row: Any, event: str, actor: str, detail: str = "", state: str = "") -> None:
        if event not in m.EVENTS:  # a new one is added to the list (and the catalogues)
            raise ValueError(f"tube event {event!r} is not one of model.EVENTS")
        self.events.append(
            {
                "txn_id": row.txn_id,
                "terminal_id": row.terminal_id,
                "branch": row.branch,
                "state": state or row.state,
                "event": event,
                "actor": actor,
                "detail": detail,
                "at": self.now,
            }
        )


_INSERT_EVENTS = tube_events.insert()


def _insert_events(conn: Connection, rows: list[dict[str, Any]]) -> None:
    execute(conn, _INSERT_EVENTS, rows)


EVENT_LOG = commit_order.EventLog("tube_events", EVENT_LOG_LOCK_KEY, _insert_events)


@contextmanager
def transaction(engine: Engine, now: datetime) -> Iterator[Tx]:
    with write_transaction(engine) as conn:
        tx = Tx(conn, now)
        yield tx
        commit_order.append(conn, EVENT_LOG, tx.events)


# -- transactions ---------------------------------------------------------------------------


# Built once (``storage.prebuilt``): the request path binds values, nothing more.
_INSERT = tube_transactions.insert().returning(*tube_transactions.c)


def load(conn: Connection, txn_id: str, *, lock: bool = False) -> Row[Any] | None:
    # lock: FOR UPDATE; on SQLite a no-op, its write transactions are one at a time already
    query = by_key(tube_transactions, ("txn_id",), lock=lock)
    return execute(conn, query, {key("txn_id"): txn_id}).first()


def insert(conn: Connection, values: dict[str, Any]) -> Row[Any]:
    """Insert the record; the stored row comes back with it (RETURNING)."""
    row = execute(conn, _INSERT, values).one()
    _remember(conn, row)
    return row


def change(conn: Connection, txn_id: str, values: dict[str, Any]) -> Row[Any]:
    """Change the record; the changed row comes back with it (RETURNING)."""
    statement = update_by_key(tube_transactions, "txn_id", returning=True)
    row = execute(conn, statement, {**values, key("txn_id"): txn_id}).one()
    _remember(conn, row)
    return row


def _remember(conn: Connection, row: Row[Any]) -> None:
    # The next ``load`` of it in the same batch (a confirm's apply after its claim) is this.
    remember(conn, by_key(tube_transactions, ("txn_id",)), {key("txn_id"): row.txn_id}, [row])


def of_terminal(conn: Connection, terminal_id: str, states: tuple[str, ...]) -> list[Row[Any]]:
    return list(
        conn.execute(
            select(tube_transactions)
            .where(
                tube_transactions.c.terminal_id == terminal_id,
                tube_transactions.c.state.in_(states),
            )
            .order_by(tube_transactions.c.created_at, tube_transactions.c.txn_id)
        )
    )


def of_branch(conn: Connection, branch: str, states: tuple[str, ...], limit: int) -> list[Row[Any]]:
    return list(
        conn.execute(
            select(tube_transactions)
            .where(tube_transactions.c.branch == branch, tube_transactions.c.state.in_(states))
            .order_by(tube_transactions.c.created_at, tube_transactions.c.txn_id)
            .limit(limit)
        )
    )


def stale(
    conn: Connection, states: tuple[str, ...], before: datetime, kind: str, limit: int
) -> list[str]:
    """Unfinished transactions unchanged since ``before`` with no ``kind`` incident opened
    since their last change, the longest-waiting first."""
    reported = (
        select(tube_incidents.c.id)
        .where(
            tube_incidents.c.txn_id == tube_transactions.c.txn_id,
            tube_incidents.c.kind == kind,
            tube_incidents.c.opened_at > tube_transactions.c.updated_at,
        )
        .exists()
    )
    return list(
        conn.execute(
            select(tube_transactions.c.txn_id)
            .where(
                tube_transactions.c.state.in_(states),
                tube_transactions.c.updated_at <= before,
                ~reported,
            )
            .order_by(tube_transactions.c.updated_at)
            .limit(limit)
        ).scalars()
    )


# -- idempotency record (the ledger's request_results table) --------------------------------


def stored_reply(conn: Connection, terminal_id: str, request_id: str) -> tuple[str, bytes] | None:
    query = by_key(request_results, ("terminal_id", "request_id"), ("kind", "response"))
    row = execute(
        conn, query, {key("terminal_id"): terminal_id, key("request_id"): request_id}
    ).first()
    return (str(row.kind), bytes(row.response)) if row is not None else None


_INSERT_REPLY = request_results.insert()


def store_reply(
    conn: Connection, terminal_id: str, request_id: str, kind: str, reply: bytes, now: datetime
) -> None:
    execute(
        conn,
        _INSERT_REPLY,
        {
            "terminal_id": terminal_id,
            "request_id": request_id,
            "kind": kind,
            "response": reply,
            "created_at": now,
        },
    )


# -- incidents ------------------------------------------------------------------------------


def open_incident(tx: Tx, row: Any, kind: str, detail: str) -> int:
    incident_id = tx.conn.execute(
        tube_incidents.insert().values(
            branch=row.branch,
            terminal_id=row.terminal_id,
            txn_id=row.txn_id,
            kind=kind,
            detail=detail,
            opened_at=tx.now,
            resolved_at=None,
            resolved_by=None,
            resolution=None,
        )
    ).inserted_primary_key[0]  # type: ignore[index]
    return int(incident_id)


def load_incident(conn: Connection, incident_id: int, *, lock: bool = False) -> Row[Any] | None:
    query = select(tube_incidents).where(tube_incidents.c.id == incident_id)
    if lock:
        query = query.with_for_update()
    return conn.execute(query).first()


def incidents(conn: Connection, branch: str, include_resolved: bool) -> list[Row[Any]]:
    query = select(tube_incidents).where(tube_incidents.c.branch == branch)
    if not include_resolved:
        query = query.where(tube_incidents.c.resolved_at.is_(None))
    return list(conn.execute(query.order_by(tube_incidents.c.id)))


def incident_of(
    conn: Connection, txn_id: str, kind: str, opened_after: datetime | None = None
) -> int | None:
    """An incident of ``kind`` about the transaction (opened after ``opened_after``)."""
    query = select(tube_incidents.c.id).where(
        tube_incidents.c.txn_id == txn_id, tube_incidents.c.kind == kind
    )
    if opened_after is not None:
        query = query.where(tube_incidents.c.opened_at > opened_after)
    found = conn.execute(query.limit(1)).scalar()
    return int(found) if found is not None else None


# -- events ---------------------------------------------------------------------------------


def events_after(conn: Connection, branch: str, after_id: int, limit: int) -> list[Row[Any]]:
    return list(
        conn.execute(
            select(tube_events)
            .where(tube_events.c.branch == branch, tube_events.c.id > after_id)
            .order_by(tube_events.c.id)
            .limit(limit)
        )
    )


def events_of(conn: Connection, txn_id: str) -> list[Row[Any]]:
    return list(
        conn.execute(
            select(tube_events).where(tube_events.c.txn_id == txn_id).order_by(tube_events.c.id)
        )
    )


# -- who and where (read-only views of other capabilities' tables) -------------------------


def terminal_branch(conn: Connection, terminal_id: str) -> str | None:
    query = by_key(terminals, ("terminal_id",), ("branch",))
    found = execute(conn, query, {key("terminal_id"): terminal_id}).scalar()
    return str(found) if found is not None else None


# The teller's branch and back-office skill in one statement (it was two; every back-office
# call asks, SendCarrier twice: before looking at its arguments and under the lock).
_TELLER = (
    select(tellers.c.branch_id, teller_skills.c.skill)
    .select_from(
        tellers.outerjoin(
            teller_skills,
            and_(
                teller_skills.c.teller_id == tellers.c.teller_id,
                teller_skills.c.skill == bindparam(key("skill")),
            ),
        )
    )
    .where(tellers.c.teller_id == bindparam(key("teller_id")))
)


def teller(conn: Connection, teller_id: str) -> tuple[str, bool] | None:
    """The teller's branch and whether they hold the back-office skill; None if unknown."""
    row = execute(
        conn, _TELLER, {key("teller_id"): teller_id, key("skill"): BACK_OFFICE_SKILL}
    ).first()
    if row is None:
        return None
    return str(row.branch_id), row.skill is not None


def pan_masked(conn: Connection, card_token: str) -> str:
    query = by_key(cards, ("card_token",), ("pan_masked",))
    found = execute(conn, query, {key("card_token"): card_token}).scalar()
    return str(found) if found is not None else ""
