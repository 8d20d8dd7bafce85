"""Routing calls: ringing a free teller with the skill, a free teller taking the oldest queued
call before any task, calls that rang unanswered, the sweep."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, select, update

from branchline.common.errors import FailedPrecondition
from branchline.server.dispatch import queue, routing, store
from branchline.server.dispatch.call_schema import calls
from branchline.server.dispatch.calls import access, sql
from branchline.server.dispatch.calls.core import CallCore
from branchline.server.dispatch.calls.model import HELD, QUEUED, RING_PAGES, RINGING
from branchline.server.dispatch.schema import tellers
from branchline.server.dispatch.tasks import offers


def expire_ringing(core: CallCore) -> list[str]:
    """Calls that rang unanswered past the ring timeout: back to the head of the queue
    (they keep their arrival time), the teller marked away, the call routed again."""
    cutoff = core.clock() - timedelta(seconds=core.ring_timeout)
    with core.engine.connect() as conn:
        due = [
            r.call_id
            for r in conn.execute(
                select(calls.c.call_id).where(calls.c.state == RINGING, calls.c.routed_at < cutoff)
            )
        ]
    return [call_id for call_id in due if unring(core, call_id, cutoff)]


@store.retrying
def unring(core: CallCore, call_id: str, cutoff: datetime) -> bool:
    with core.tx() as tx:
        row = access.call_or_404(tx.conn, call_id, lock=True)
        if row.state != RINGING or row.routed_at is None or row.routed_at >= cutoff:
            return False
        tx.conn.execute(
            update(calls)
            .where(calls.c.call_id == call_id, calls.c.state == RINGING)
            .values(state=QUEUED, teller_id=None, routed_at=None, updated_at=tx.now)
        )
        offers.release(core.dispatch, tx, row.teller_id, pull=False)
        tx.conn.execute(
            update(tellers)
            .where(tellers.c.teller_id == row.teller_id)
            .values(away=True, updated_at=tx.now)
        )
        tx.event(
            "away",
            branch=row.branch,
            teller_id=row.teller_id,
            detail=f"teller {row.teller_id} did not answer call {call_id}: marked away",
        )
        route(core, tx, call_id, row.branch, row.business_type)
        return True


def check_off_duty(conn: Connection, teller_id: str) -> None:
    held = conn.execute(
        select(calls.c.call_id, calls.c.state).where(
            calls.c.teller_id == teller_id, calls.c.state.in_(HELD)
        )
    ).first()
    if held is not None:
        raise FailedPrecondition(
            f"on_duty: teller {teller_id} is on call {held.call_id} ({held.state}); end it first",
            field="on_duty",
        )


def match_queued(core: CallCore) -> int:
    """Give queued calls to free tellers (a sweep, after anything that was missed)."""
    matched = 0
    with core.engine.connect() as conn:
        pending = conn.execute(
            select(calls.c.call_id, calls.c.branch, calls.c.business_type)
            .where(calls.c.state == QUEUED)
            .order_by(calls.c.created_at, calls.c.call_id)
            .limit(100)
        ).all()
    for row in pending:
        if route_again(core, row.call_id, row.branch, row.business_type):
            matched += 1
    return matched


@store.retrying
def route_again(core: CallCore, call_id: str, branch: str, business_type: str) -> bool:
    with core.tx() as tx:
        return route(core, tx, call_id, branch, business_type)


def route(core: CallCore, tx: store.Tx, call_id: str, branch: str, business_type: str) -> bool:
    """Ring a free teller with the skill (routing.choose_teller); False: stays queued."""
    teller_id = ring(core, tx, branch, business_type, branch_strategy(core, tx.conn, branch))
    if teller_id is None:
        return False
    done = tx.conn.execute(
        sql.RING, {"b_call_id": call_id, "b_teller_id": teller_id, "b_now": tx.now}
    )
    if done.rowcount != 1:
        raise FailedPrecondition(f"call {call_id} changed meanwhile; try again")
    return True


def ring(
    core: CallCore, tx: store.Tx, branch: str, business_type: str, strategy: str
) -> str | None:
    """Take a free teller of the branch with the skill (routing.choose_teller among the
    first candidates in strategy order); None if every one is busy."""
    for _page in range(RING_PAGES):
        candidates = queue.free_tellers(tx.conn, branch, business_type, strategy)
        full = len(candidates) >= queue.page_size(strategy)
        while candidates:
            choice = routing.choose_teller(
                candidates, business_type, strategy, rng=core.dispatch.rng
            )
            if choice is None:
                return None
            if queue.take(tx, choice.teller_id, free=True):
                return choice.teller_id
            candidates = [c for c in candidates if c.teller_id != choice.teller_id]
        if not full:
            return None
        # Every candidate read was taken meanwhile; the next read finds others.
    return None


def pull_call(core: CallCore, tx: store.Tx, row: Row[Any], skills: tuple[str, ...]) -> bool:
    """A teller just became free (``row``, locked): ring them with the oldest queued call
    of their branch they can take."""
    if not skills:
        return False
    call = next_queued(tx, row.branch_id, skills)
    if call is None or not queue.take(tx, row.teller_id, free=True):
        return False
    tx.conn.execute(
        sql.RING, {"b_call_id": call.call_id, "b_teller_id": row.teller_id, "b_now": tx.now}
    )
    return True


def next_queued(tx: store.Tx, branch: str, skills: Sequence[str]) -> Row[Any] | None:
    """The oldest queued call of the branch with one of ``skills``, locked, skipping the
    calls other transactions hold.

    Its id comes from the head of each skill's queue (an index read of one row each,
    however long the queues); the head found locked by another transaction, the whole
    queue is read in order instead, as the skip demands.
    """
    if tx.postgres:
        found = tx.conn.execute(
            sql.PG_NEXT_QUEUED, {"b_branch": branch, "b_skills": list(skills)}
        ).first()
        if found is None:
            return None  # nothing queued with these skills
        if found.call_id is not None:
            return found
    else:
        # SQLite: one writer at a time, nothing to skip.
        params = {"b_branch": branch, **queue.skill_params(False, skills)}
        return tx.conn.execute(sql.sqlite_next_queued(len(skills)), params).first()
    return tx.conn.execute(
        sql.NEXT_QUEUED_IN_ORDER, {"b_branch": branch, "b_skills": list(skills)}
    ).first()


def branch_strategy(core: CallCore, conn: Connection, branch: str) -> str:
    found = conn.execute(sql.BRANCH_STRATEGY, {"b_branch_id": branch}).first()
    return (found.routing_strategy if found is not None else None) or core.dispatch.strategy
