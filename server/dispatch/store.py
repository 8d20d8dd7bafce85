"""Rows in and out of the dispatch tables, and the transaction every state change runs in.

Lock order, so that transactions on several replicas never deadlock: a task row is locked
(blocking) only while no teller row is held; teller rows are locked after it; whoever
holds a teller row and looks for a task skips locked tasks (SKIP LOCKED). On SQLite
BEGIN IMMEDIATE serialises writers and FOR UPDATE is not emitted at all.
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

from sqlalchemy import Connection, Engine, Row, select, text
from sqlalchemy.exc import OperationalError

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
    task_offers,
    tasks,
    teller_skills,
    tellers,
)
from branchline.server.storage.engine import write_transaction

# Arbitrary constant naming the "append to dispatch_events" advisory lock in PostgreSQL.
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


def _append_events(tx: Tx) -> None:
    if not tx.events:
        return
    if tx.postgres:
        # As in the fleet log: ids become visible in order, so tailing readers miss none.
        # Taken last, after every row lock of the transaction: no deadlock.
        tx.conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": EVENT_LOG_LOCK_KEY})
    tx.conn.execute(dispatch_events.insert(), tx.events)


# -- locks ---------------------------------------------------------------------------------


def lock_task(conn: Connection, task_id: str) -> Row[Any] | None:
    return conn.execute(select(tasks).where(tasks.c.task_id == task_id).with_for_update()).first()


def lock_teller(conn: Connection, teller_id: str) -> Row[Any] | None:
    return conn.execute(
        select(tellers).where(tellers.c.teller_id == teller_id).with_for_update()
    ).first()


def lock_tellers(conn: Connection, teller_ids: Iterable[str]) -> dict[str, Row[Any]]:
    """Lock several tellers in id order (a fixed order: no deadlock between two of these)."""
    ids = sorted(set(teller_ids))
    if not ids:
        return {}
    rows = conn.execute(
        select(tellers)
        .where(tellers.c.teller_id.in_(ids))
        .order_by(tellers.c.teller_id)
        .with_for_update()
    ).all()
    return {row.teller_id: row for row in rows}


# -- reads ---------------------------------------------------------------------------------


def skills_of(conn: Connection, teller_ids: Sequence[str]) -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {teller_id: [] for teller_id in teller_ids}
    if teller_ids:
        rows = conn.execute(
            select(teller_skills.c.teller_id, teller_skills.c.skill)
            .where(teller_skills.c.teller_id.in_(list(teller_ids)))
            .order_by(teller_skills.c.teller_id, teller_skills.c.skill)
        )
        for row in rows:
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
    row = conn.execute(select(tellers).where(tellers.c.teller_id == teller_id)).first()
    if row is None:
        return None
    return teller_from_row(row, skills_of(conn, [teller_id])[teller_id])


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


def load_manager(conn: Connection, manager_id: str) -> LobbyManager | None:
    row = conn.execute(
        select(lobby_managers).where(lobby_managers.c.manager_id == manager_id)
    ).first()
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


def load_branch(conn: Connection, branch_id: str) -> Branch | None:
    row = conn.execute(select(branches).where(branches.c.branch_id == branch_id)).first()
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


def excluded_tellers(conn: Connection, task_id: str) -> frozenset[str]:
    """Tellers who rejected the task or let its offer expire."""
    rows = conn.execute(
        select(task_offers.c.teller_id).where(
            task_offers.c.task_id == task_id, task_offers.c.answer.in_(("rejected", "expired"))
        )
    )
    return frozenset(row.teller_id for row in rows)
