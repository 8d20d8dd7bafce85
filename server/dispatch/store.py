"""Rows in and out of the dispatch tables, and the transaction every state change runs in.

Lock order, so that transactions on several replicas never deadlock: a task row is locked
(blocking) only while no teller row is held; teller rows are locked after it; whoever
holds a teller row and looks for a task skips locked tasks (SKIP LOCKED). On SQLite
BEGIN IMMEDIATE serialises writers and FOR UPDATE is not emitted at all.

The statements on the routing paths are built once, here, in ``queue`` and in the ``sql``
modules of ``tasks`` and ``calls``, with named parameters (``b_...``): building a
SQLAlchemy statement costs more Python time than the database takes to run most of them,
and a built statement is also compiled only once.
"""

from __future__ import annotations

import functools
import json
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import (
    Connection,
    Engine,
    Row,
    bindparam,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import OperationalError

from branchline.common.image_types import image_type
from branchline.server.delivery.bus import TOPIC_DISPATCH, signal_in_transaction
from branchline.server.dispatch.model import (
    Branch,
    DispatchEvent,
    LobbyManager,
    Material,
    Offer,
    Task,
    Teller,
)
from branchline.server.dispatch.schema import (
    branches,
    dispatch_events,
    lobby_managers,
    tasks,
    teller_skills,
    tellers,
)
from branchline.server.storage import commit_order
from branchline.server.storage.engine import write_transaction

# Arbitrary constant naming the "append to dispatch_events" advisory lock in PostgreSQL.
# (commit_order takes it just before COMMIT: do not change it while old replicas run.)
EVENT_LOG_LOCK_KEY = 0x6272_6C6E_6473_7076  # "brlndspv"
# PostgreSQL's deadlock_detected and serialization_failure: the transaction did nothing
# and may simply run again.
RETRYABLE_PGCODES = ("40P01", "40001")
ATTEMPTS = 5

P = ParamSpec("P")
R = TypeVar("R")


def retrying(fn: Callable[P, R]) -> Callable[P, R]:
    """Run a whole transaction again when the database aborted it as a deadlock victim.

    Two transactions may lock the same two tellers in opposite orders (a reject that
    re-routes against a reassignment); PostgreSQL then aborts one, which nothing has seen.
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return fn(*args, **kwargs)
            except OperationalError as exc:
                if attempt == ATTEMPTS or not _retryable(exc):
                    raise
                time.sleep(random.uniform(0, 0.02 * attempt))
        raise AssertionError("unreachable")

    return wrapper


def _retryable(exc: OperationalError) -> bool:
    code = getattr(exc.orig, "pgcode", None)
    return code in RETRYABLE_PGCODES or "database is locked" in str(exc.orig)


@dataclass
class Tx:
    """One write transaction: the connection, its time, and the events it will append."""

    conn: Connection
    now: datetime
    events: list[dict[str, Any]] = field(default_factory=list)
    # Each task row as this transaction last wrote it (UPDATE/INSERT ... RETURNING): read
    # back at the end without another query. Every write to ``tasks`` records itself here.
    task_rows: dict[str, Row[Any]] = field(default_factory=dict)
    # Each teller row as duty.set_presence, queue.take and offers.release last wrote it
    # (UPDATE ... RETURNING), for an operation whose every later write to that teller goes
    # through them.
    teller_rows: dict[str, Row[Any]] = field(default_factory=dict)

    @property
    def postgres(self) -> bool:
        return self.conn.dialect.name == "postgresql"

    def event(
        self,
        kind: str,
        *,
        branch: str,
        task: Row[Any] | None = None,
        state: str | None = None,
        teller_id: str | None = None,
        detail: str = "",
    ) -> dict[str, Any]:
        """Queue an event for the end of the transaction; returned so that its state can
        be set once the change it reports has landed (a reject that re-routes)."""
        self.events.append(
            {
                "task_id": task.task_id if task is not None else None,
                "branch": branch,
                "origin_terminal": task.origin_terminal if task is not None else None,
                "teller_id": teller_id,
                "kind": kind,
                "state": state if state is not None else (task.state if task is not None else ""),
                "detail": detail,
                "at": self.now,
            }
        )
        return self.events[-1]


@contextmanager
def transaction(engine: Engine, now: datetime) -> Iterator[Tx]:
    with write_transaction(engine) as conn:
        tx = Tx(conn, now)
        yield tx
        _append_events(tx)


_EVENT_COLUMNS = (
    "task_id",
    "branch",
    "origin_terminal",
    "teller_id",
    "kind",
    "state",
    "detail",
    "at",
)
_INSERT_EVENTS = dispatch_events.insert()
# PostgreSQL: every row in one statement, whatever their number (one round trip).
_PG_EVENT_ROWS = (
    func.unnest(
        *(
            bindparam(f"b_{name}", type_=ARRAY(dispatch_events.c[name].type))
            for name in _EVENT_COLUMNS
        )
    )
    .table_valued(*_EVENT_COLUMNS, with_ordinality="ord")
    .render_derived(name="new_events")
)
_PG_INSERT_EVENTS = dispatch_events.insert().from_select(
    list(_EVENT_COLUMNS),
    # In the transaction's order: the ids too.
    select(*(_PG_EVENT_ROWS.c[name] for name in _EVENT_COLUMNS)).order_by(_PG_EVENT_ROWS.c.ord),
)


def _append_events(tx: Tx) -> None:
    if not tx.events:
        return
    # Watch streams on every replica hear of it at commit (the delivery bus; PostgreSQL).
    signal_in_transaction(tx.conn, TOPIC_DISPATCH)
    # As in the fleet log: inserted just before COMMIT under the log's lock, so ids become
    # visible in order and tailing readers miss none (storage.commit_order).
    commit_order.append(tx.conn, EVENT_LOG, tx.events)


def _insert_events(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if conn.dialect.name == "postgresql":
        params = {f"b_{name}": [row[name] for row in rows] for name in _EVENT_COLUMNS}
        conn.execute(_PG_INSERT_EVENTS, params)
        return
    conn.execute(_INSERT_EVENTS, rows)


EVENT_LOG = commit_order.EventLog("dispatch_events", EVENT_LOG_LOCK_KEY, _insert_events)


# -- locks ---------------------------------------------------------------------------------

_LOCK_TASK = select(tasks).where(tasks.c.task_id == bindparam("b_task_id")).with_for_update()
_LOCK_TELLER = (
    select(tellers).where(tellers.c.teller_id == bindparam("b_teller_id")).with_for_update()
)
_LOCK_TELLERS = (
    select(tellers)
    .where(tellers.c.teller_id.in_(bindparam("b_teller_ids", expanding=True)))
    .order_by(tellers.c.teller_id)
    .with_for_update()
)
# A teller's row with one skill per result row (one row with skill NULL: no skills).
_TELLER_AND_SKILLS = (
    select(tellers, teller_skills.c.skill)
    .select_from(tellers.outerjoin(teller_skills, teller_skills.c.teller_id == tellers.c.teller_id))
    .where(tellers.c.teller_id == bindparam("b_teller_id"))
    .order_by(teller_skills.c.skill)
)
_LOCK_TELLER_AND_SKILLS = _TELLER_AND_SKILLS.with_for_update(of=tellers)


def lock_task(conn: Connection, task_id: str) -> Row[Any] | None:
    return conn.execute(_LOCK_TASK, {"b_task_id": task_id}).first()


def lock_teller(conn: Connection, teller_id: str) -> Row[Any] | None:
    return conn.execute(_LOCK_TELLER, {"b_teller_id": teller_id}).first()


def lock_teller_and_skills(
    conn: Connection, teller_id: str
) -> tuple[Row[Any] | None, tuple[str, ...]]:
    """``lock_teller`` and ``skills_of`` in one query: the locked row and its skills."""
    rows = conn.execute(_LOCK_TELLER_AND_SKILLS, {"b_teller_id": teller_id}).all()
    return _teller_and_skills(rows)


def _teller_and_skills(rows: Sequence[Row[Any]]) -> tuple[Row[Any] | None, tuple[str, ...]]:
    if not rows:
        return None, ()
    return rows[0], tuple(row.skill for row in rows if row.skill is not None)


def lock_tellers(conn: Connection, teller_ids: Iterable[str]) -> dict[str, Row[Any]]:
    """Lock several tellers in id order (a fixed order: no deadlock between two of these)."""
    ids = sorted(set(teller_ids))
    if not ids:
        return {}
    rows = conn.execute(_LOCK_TELLERS, {"b_teller_ids": ids}).all()
    return {row.teller_id: row for row in rows}


# -- reads ---------------------------------------------------------------------------------

_SKILLS_OF = (
    select(teller_skills.c.teller_id, teller_skills.c.skill)
    .where(teller_skills.c.teller_id.in_(bindparam("b_teller_ids", expanding=True)))
    .order_by(teller_skills.c.teller_id, teller_skills.c.skill)
)


def skills_of(conn: Connection, teller_ids: Sequence[str]) -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {teller_id: [] for teller_id in teller_ids}
    if teller_ids:
        for row in conn.execute(_SKILLS_OF, {"b_teller_ids": list(teller_ids)}):
            out[row.teller_id].append(row.skill)
    return {key: tuple(value) for key, value in out.items()}


def teller_from_row(row: Row[Any], skills: Sequence[str]) -> Teller:
    return Teller(
        teller_id=row.teller_id,
        name=row.name,
        branch_id=row.branch_id,
        skills=tuple(skills),
        on_duty=bool(row.on_duty),
        away=bool(row.away),
        load=int(row.load),
        idle_since=row.idle_since,
        handled=int(row.handled),
    )


def load_teller(conn: Connection, teller_id: str) -> Teller | None:
    row, skills = _teller_and_skills(
        conn.execute(_TELLER_AND_SKILLS, {"b_teller_id": teller_id}).all()
    )
    return teller_from_row(row, skills) if row is not None else None


def load_tellers(conn: Connection, branch_id: str | None) -> list[Teller]:
    query = select(tellers).order_by(tellers.c.teller_id)
    if branch_id:
        query = query.where(tellers.c.branch_id == branch_id)
    rows = conn.execute(query).all()
    skills = skills_of(conn, [row.teller_id for row in rows])
    return [teller_from_row(row, skills[row.teller_id]) for row in rows]


def manager_from_row(row: Row[Any]) -> LobbyManager:
    return LobbyManager(
        manager_id=row.manager_id,
        name=row.name,
        branch_id=row.branch_id,
        on_duty=bool(row.on_duty),
    )


_LOAD_MANAGER = select(lobby_managers).where(
    lobby_managers.c.manager_id == bindparam("b_manager_id")
)


def load_manager(conn: Connection, manager_id: str) -> LobbyManager | None:
    row = conn.execute(_LOAD_MANAGER, {"b_manager_id": manager_id}).first()
    return manager_from_row(row) if row is not None else None


def load_managers(conn: Connection, branch_id: str | None) -> list[LobbyManager]:
    query = select(lobby_managers).order_by(lobby_managers.c.manager_id)
    if branch_id:
        query = query.where(lobby_managers.c.branch_id == branch_id)
    return [manager_from_row(row) for row in conn.execute(query)]


def branch_from_row(row: Row[Any]) -> Branch:
    return Branch(
        branch_id=row.branch_id,
        name=row.name,
        routing_strategy=row.routing_strategy,
        created_at=row.created_at,
    )


_LOAD_BRANCH = select(branches).where(branches.c.branch_id == bindparam("b_branch_id"))


def load_branch(conn: Connection, branch_id: str) -> Branch | None:
    row = conn.execute(_LOAD_BRANCH, {"b_branch_id": branch_id}).first()
    return branch_from_row(row) if row is not None else None


def task_from_row(
    row: Row[Any],
    materials: Sequence[Material] = (),
    offers: Sequence[Offer] = (),
    events: Sequence[DispatchEvent] = (),
) -> Task:
    return Task(
        task_id=row.task_id,
        request_id=row.request_id,
        origin_terminal=row.origin_terminal,
        origin_branch=row.origin_branch,
        target_branch=row.target_branch,
        business_type=row.business_type,
        title=row.title,
        fields={str(k): str(v) for k, v in json.loads(row.fields).items()},
        note=row.note,
        customer_ref=row.customer_ref,
        state=row.state,
        teller_id=row.teller_id,
        offer_id=row.offer_id,
        offer_expires_at=row.offer_expires_at,
        lobby_manager_id=row.lobby_manager_id,
        wait_estimate_seconds=row.wait_estimate_seconds,
        result_outcome=row.result_outcome,
        result_reason=row.result_reason,
        created_at=row.created_at,
        updated_at=row.updated_at,
        materials=tuple(materials),
        offers=tuple(offers),
        events=tuple(events),
    )


def material_from_row(row: Row[Any]) -> Material:
    return Material(
        name=row.name,
        content_type=row.content_type,
        sha256=row.sha256,
        size=int(row.size),
        uploaded_at=row.uploaded_at,
        deleted_at=row.deleted_at,
        # Where the row carries the first bytes of its blob (reads.get_task); none once
        # deleted, even while another task still holds the same content.
        image_type=image_type(bytes(head))
        if (head := row._mapping.get("head")) and row.deleted_at is None
        else "",
    )


def offer_from_row(row: Row[Any]) -> Offer:
    return Offer(
        offer_id=int(row.offer_id),
        teller_id=row.teller_id,
        via=row.via,
        offered_by=row.offered_by,
        offered_at=row.offered_at,
        expires_at=row.expires_at,
        answer=row.answer,
        answered_at=row.answered_at,
        reason=row.reason,
    )


def event_from_row(row: Row[Any]) -> DispatchEvent:
    return DispatchEvent(
        event_id=int(row.id),
        task_id=row.task_id,
        branch=row.branch,
        origin_terminal=row.origin_terminal,
        teller_id=row.teller_id,
        kind=row.kind,
        state=row.state,
        detail=row.detail,
        at=row.at,
    )
