"""Routing inside a transaction: offering a task to a free teller (or the lobby, or the queue),
a teller's load going down and the next queued task they take, closing offers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, Row

from branchline.common.errors import FailedPrecondition
from branchline.server.dispatch import queue, routing, store
from branchline.server.dispatch.model import (
    AT_LOBBY,
    OFFERED,
    QUEUED,
)
from branchline.server.dispatch.tasks import sql
from branchline.server.dispatch.tasks.core import Core


def route(
    core: Core,
    tx: store.Tx,
    task: Row[Any],
    from_state: str,
    *,
    strategy: str | None = None,
    new: bool = False,
) -> str:
    """Offer ``task`` to a free teller, else to the lobby, else queue it; the new state.

    ``strategy``: the branch's, when the caller has just read it; ``new`` for a task
    nobody has been offered yet (so nobody can have rejected it).
    """
    if strategy is None:
        branch = store.load_branch(tx.conn, task.target_branch)
        strategy = (branch.routing_strategy if branch else None) or core.strategy
    candidates = queue.free_tellers(
        tx.conn,
        task.target_branch,
        task.business_type,
        strategy,
        # Tellers who rejected the task or let its offer expire: left out by the query.
        None if new else task.task_id,
    )
    while True:
        chosen = routing.choose_teller(candidates, task.business_type, strategy, rng=core.rng)
        if chosen is None:
            break
        if offer(core, tx, task, from_state, chosen.teller_id, "routing", "", "", free=True):
            return OFFERED
        # Taken by another transaction since we read it: the next one.
        candidates = [c for c in candidates if c.teller_id != chosen.teller_id]
    managers = manager_candidates(tx.conn, task.target_branch)
    decision = routing.route(task.business_type, [], managers, strategy)
    if decision.action == routing.LOBBY:
        assert decision.manager_id is not None
        to_lobby(tx, task, from_state, decision.manager_id, decision.reason)
        return AT_LOBBY
    to_queue(tx, task, from_state, decision.reason)
    return QUEUED


def manager_candidates(conn: Connection, branch_id: str) -> list[routing.ManagerCandidate]:
    ids = [row.manager_id for row in conn.execute(sql.MANAGERS_ON_DUTY, {"b_branch_id": branch_id})]
    if len(ids) < 2:
        return [routing.ManagerCandidate(m, 0) for m in ids]
    pending: dict[str, int] = {
        row[0]: int(row[1])
        for row in conn.execute(sql.PENDING_AT_LOBBY, {"b_branch_id": branch_id})
    }
    return [routing.ManagerCandidate(m, int(pending.get(m, 0))) for m in ids]


def offer(
    core: Core,
    tx: store.Tx,
    task: Row[Any],
    from_state: str,
    teller_id: str,
    via: str,
    by: str,
    reason: str,
    *,
    free: bool,
) -> bool:
    """Offer the task to one teller; False if ``free`` is asked and the teller is not."""
    if not queue.take(tx, teller_id, free=free):
        return False
    expires = tx.now + timedelta(seconds=core.offer_timeout)
    offer_id = tx.conn.execute(
        sql.INSERT_OFFER,
        {
            "task_id": task.task_id,
            "teller_id": teller_id,
            "via": via,
            "offered_by": by,
            "offered_at": tx.now,
            "expires_at": expires,
            "reason": reason,
        },
    ).scalar_one()
    update_task(
        tx,
        task,
        expect=from_state,
        state=OFFERED,
        teller_id=teller_id,
        offer_id=offer_id,
        offer_expires_at=expires,
        lobby_manager_id=None,
        wait_estimate_seconds=None,
    )
    tx.event(
        "offered",
        branch=task.target_branch,
        task=task,
        state=OFFERED,
        teller_id=teller_id,
        detail=f"offered to teller {teller_id} ({via}"
        + (f" by {by}" if by else "")
        + f"), answer by {expires.isoformat(timespec='seconds')}",
    )
    return True


def to_lobby(tx: store.Tx, task: Row[Any], from_state: str, manager_id: str, reason: str) -> None:
    update_task(
        tx,
        task,
        expect=from_state,
        state=AT_LOBBY,
        teller_id=None,
        offer_id=None,
        offer_expires_at=None,
        lobby_manager_id=manager_id,
        wait_estimate_seconds=None,
    )
    tx.event(
        "at_lobby",
        branch=task.target_branch,
        task=task,
        state=AT_LOBBY,
        detail=f"lobby manager {manager_id} to designate a teller ({reason})",
    )


def to_queue(tx: store.Tx, task: Row[Any], from_state: str, reason: str) -> None:
    update_task(
        tx,
        task,
        expect=from_state,
        state=QUEUED,
        teller_id=None,
        offer_id=None,
        offer_expires_at=None,
        lobby_manager_id=None,
        wait_estimate_seconds=None,
    )
    tx.event("queued", branch=task.target_branch, task=task, state=QUEUED, detail=reason)


def release(core: Core, tx: store.Tx, teller_id: str, *, handled: bool = False, pull: bool) -> None:
    """One task less; a teller left with none is idle from now (and may take the next)."""
    row = tx.conn.execute(
        sql.RELEASE, {"b_teller_id": teller_id, "b_handled": 1 if handled else 0, "b_now": tx.now}
    ).first()
    if row is not None:
        tx.teller_rows[teller_id] = row
    if pull:
        known = None if row is None else (row, tuple(sorted((row.skills or "").split())))
        pull_next(core, tx, teller_id, known)


def pull_next(
    core: Core, tx: store.Tx, teller_id: str, teller: tuple[Row[Any], tuple[str, ...]] | None = None
) -> None:
    """A teller just became free: offer them the oldest queued task they can take.

    ``teller``: their row as this transaction just wrote it (so locked) and their
    skills, when the caller has them; else both are read here, the row locked.
    """
    row, skills = teller or store.lock_teller_and_skills(tx.conn, teller_id)
    if row is None or not row.on_duty or row.away or row.load != 0:
        return
    for hook in core.pull_hooks:
        if hook(tx, row, skills):
            return
    if not skills:
        return
    # The head of each queue (skill x unassigned state) in one query, skipping tasks
    # another transaction is moving; each head stays locked until the commit.
    heads = tx.conn.execute(*sql.queue_heads(tx.postgres, row.branch_id, skills, teller_id))
    rows: dict[str, Row[Any]] = {}
    waiting: list[routing.QueuedTask] = []
    for task in heads:
        rows[task.task_id] = task
        waiting.append(routing.QueuedTask(task.task_id, task.business_type, task.created_at))
    me = routing.TellerCandidate(
        teller_id, frozenset(skills), True, False, 0, row.idle_since, int(row.handled)
    )
    choice = routing.choose_task(waiting, me)
    if choice is not None:
        task = rows[choice.task_id]
        offer(core, tx, task, task.state, teller_id, "routing", "", "", free=True)


def close_offer(tx: store.Tx, task: Row[Any], answer: str, reason: str) -> None:
    if task.offer_id is None:
        return
    # The teller's own answer: keep the time of the first one.
    own = answer in ("accepted", "waiting", "rejected", "expired")
    tx.conn.execute(
        sql.CLOSE_OWN_OFFER if own else sql.CLOSE_OFFER,
        {"b_offer_id": task.offer_id, "b_answer": answer, "b_reason": reason, "b_now": tx.now},
    )


def update_task(tx: store.Tx, task: Row[Any], *, expect: str | None = None, **values: Any) -> None:
    """Change a task only if it is still in the state it was read in."""
    row = tx.conn.execute(
        sql.UPDATE_TASK,
        {
            "b_task_id": task.task_id,
            "b_expect": expect or task.state,
            "updated_at": tx.now,
            **values,
        },
    ).first()
    if row is None:
        raise FailedPrecondition(f"task {task.task_id} changed meanwhile; try again")
    tx.task_rows[task.task_id] = row


def set_event_state(tx: store.Tx, event: dict[str, Any], state: str) -> None:
    event["state"] = state
