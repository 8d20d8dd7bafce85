"""A task's life: sent by a mobile counter, answered (accept / wait / reject), reassigned or
designated, cancelled by its origin, completed with a result."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Row
from sqlalchemy.exc import IntegrityError

from branchline.common.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    echo,
)
from branchline.server.dispatch import store
from branchline.server.dispatch import validate as check
from branchline.server.dispatch.model import (
    ACCEPT,
    ACCEPTED,
    ANSWERS,
    CANCELLED,
    DONE,
    FAILURE,
    HELD_STATES,
    LOBBY,
    OFFERED,
    OPEN_STATES,
    QUEUED,
    REJECT,
    SUCCESS,
    TELLER,
    WAIT,
    WAITING,
    Actor,
    Task,
)
from branchline.server.dispatch.tasks import checks, offers, sql
from branchline.server.dispatch.tasks.core import OPERATOR, Core


def send_task(
    core: Core,
    origin: Actor,
    origin_branch: str,
    request_id: str,
    target_branch: str,
    business_type: str,
    title: str,
    fields: Mapping[str, str] | None = None,
    note: str = "",
    customer_ref: str = "",
) -> Task:
    """A mobile counter sends a task to a branch; routed at once. Repeating the same
    ``request_id`` returns the first task (a retry after a lost answer is safe)."""
    check.text("request_id", request_id, check.MAX_REQUEST_ID, required=True)
    check.ident("target_branch", target_branch)
    check.skill("business_type", business_type)
    check.text("title", title, check.MAX_TITLE, required=True)
    values = check.fields_map("fields", fields or {})
    check.text("note", note, check.MAX_NOTE)
    check.text("customer_ref", customer_ref, check.MAX_CUSTOMER_REF)
    params = {
        "b_request_id": request_id,
        "b_origin_terminal": origin.id,
        "b_origin_branch": origin_branch,
        "b_target_branch": target_branch,
        "b_business_type": business_type,
        "b_title": title,
        "b_fields": json.dumps(values, sort_keys=True),
        "b_note": note,
        "b_customer_ref": customer_ref,
        "b_state": QUEUED,
    }
    for _attempt in range(2):
        try:
            task = _insert_or_repeat(core, params, origin_branch)
        except IntegrityError:
            continue  # a conflict the insert does not absorb (a task_id drawn twice)
        if task is not None:
            return task
    raise AlreadyExists(
        f"request_id: {echo(request_id)} is being used concurrently", field="request_id"
    )


@store.retrying
def _insert_or_repeat(core: Core, params: Mapping[str, Any], origin_branch: str) -> Task | None:
    """The new task, routed; or the task this request already made; None if that one was
    gone again by the time it was read (the caller tries once more)."""
    with core.tx() as tx:
        task_id = "tk-" + secrets.token_hex(6)
        # The new row comes back from the INSERT (ours alone until commit); nothing if the
        # branch is unknown or the origin already used this request_id: a new request
        # costs no read ahead of its insert.
        insert = sql.PG_INSERT_NEW_TASK if tx.postgres else sql.SQLITE_INSERT_NEW_TASK
        row = tx.conn.execute(
            insert, {**params, "b_task_id": task_id, "b_created_at": tx.now, "b_updated_at": tx.now}
        ).first()
        if row is None:
            return _same_request(tx, params)
        return _route_new(core, tx, row, origin_branch)


def _same_request(tx: store.Tx, params: Mapping[str, Any]) -> Task | None:
    """The task the origin already sent with this request_id (the same content, or
    ALREADY_EXISTS); None if there is none (any more). NOT_FOUND for an unknown branch."""
    request_id = params["b_request_id"]
    existing = checks.task_by_request(tx.conn, params["b_origin_terminal"], request_id)
    if existing is None:
        checks.require_branch(tx.conn, params["b_target_branch"], "target_branch")
        return None
    sent = (params["b_target_branch"], params["b_business_type"], params["b_title"])
    if (existing.target_branch, existing.business_type, existing.title) != sent:
        raise AlreadyExists(
            f"request_id: {echo(request_id)} was already used for task "
            f"{existing.task_id} with other content",
            field="request_id",
        )
    return store.task_from_row(existing)


def _route_new(core: Core, tx: store.Tx, row: Row[Any], origin_branch: str) -> Task:
    """A task just inserted: its event, and routed (nobody can have rejected it yet)."""
    tx.task_rows[row.task_id] = row
    event = tx.event(
        "created",
        branch=row.target_branch,
        task=row,
        detail=f"from terminal {row.origin_terminal} of branch {origin_branch}: "
        f"{row.business_type}",
    )
    strategy = row.branch_strategy or core.strategy
    state = offers.route(core, tx, row, QUEUED, strategy=strategy, new=True)
    offers.set_event_state(tx, event, state)
    return checks.read_task(tx, row.task_id)


@store.retrying
def cancel_task(core: Core, actor: Actor, task_id: str, reason: str = "") -> Task:
    check.ident("task_id", task_id)
    check.text("reason", reason, check.MAX_REASON)
    with core.tx() as tx:
        task = checks.task_or_404(tx.conn, task_id, lock=True)
        checks.check_origin(actor, task)
        if task.state not in OPEN_STATES:
            raise FailedPrecondition(
                f"task {task_id} is {task.state}: it can no longer be cancelled"
            )
        holder = task.teller_id if task.state in HELD_STATES else None
        offers.update_task(
            tx,
            task,
            state=CANCELLED,
            offer_expires_at=None,
            result_reason=reason or "cancelled by the origin",
        )
        tx.event(
            "cancelled",
            branch=task.target_branch,
            task=task,
            state=CANCELLED,
            teller_id=holder,
            detail=f"cancelled by terminal {actor.id}" + (f": {reason}" if reason else ""),
        )
        if holder is not None:
            offers.close_offer(tx, task, "withdrawn", "cancelled by the origin")
            offers.release(core, tx, holder, pull=True)
        return checks.read_task(tx, task_id)


@store.retrying
def answer_offer(
    core: Core,
    actor: Actor,
    task_id: str,
    answer: str,
    *,
    offer_id: int | None = None,
    estimate_seconds: int = 0,
    reason: str = "",
) -> Task:
    """Accept, wait (with an estimate for the origin) or reject an offer."""
    check.ident("task_id", task_id)
    if answer not in ANSWERS:
        raise InvalidArgument("answer", f"expected one of {', '.join(ANSWERS)}")
    if answer == WAIT:
        check.wait_seconds("estimate_seconds", estimate_seconds)
    check.text("reason", reason, check.MAX_REASON)
    if actor.role != TELLER:
        raise PermissionDenied(
            f"offers are answered by the teller they went to; not {actor}", rule="role"
        )
    with core.tx() as tx:
        task = checks.task_or_404(tx.conn, task_id, lock=True)
        checks.check_holder(tx.conn, actor, task)
        _check_answerable(tx, task, offer_id)
        _apply_answer(core, tx, actor, task, answer, estimate_seconds, reason)
        return checks.read_task(tx, task_id)


def _check_answerable(tx: store.Tx, task: Row[Any], offer_id: int | None) -> None:
    """The task's offer is the one answered, still open and not past its time."""
    task_id = task.task_id
    if offer_id is not None and offer_id != task.offer_id:
        raise FailedPrecondition(
            f"offer_id: offer {offer_id} of task {task_id} is no longer open "
            f"(the current offer is {task.offer_id})",
            field="offer_id",
        )
    if task.state not in (OFFERED, WAITING):
        raise FailedPrecondition(
            f"answer: task {task_id} is already {task.state}; an accepted task is "
            "reassigned or given a result, not answered again",
            field="answer",
        )
    if task.state == OFFERED and task.offer_expires_at <= tx.now:
        # Past its time even if the sweep has not moved it on yet.
        raise FailedPrecondition(
            f"offer_id: the offer of task {task_id} expired at "
            f"{task.offer_expires_at.isoformat(timespec='seconds')}",
            field="offer_id",
        )


def _apply_answer(
    core: Core,
    tx: store.Tx,
    actor: Actor,
    task: Row[Any],
    answer: str,
    estimate_seconds: int,
    reason: str,
) -> None:
    if answer == ACCEPT:
        offers.close_offer(tx, task, "accepted", reason)
        offers.update_task(tx, task, state=ACCEPTED, offer_expires_at=None)
        tx.event(
            "accepted",
            branch=task.target_branch,
            task=task,
            state=ACCEPTED,
            teller_id=actor.id,
            detail=f"accepted by teller {actor.id}",
        )
    elif answer == WAIT:
        offers.close_offer(tx, task, "waiting", reason)
        offers.update_task(
            tx,
            task,
            state=WAITING,
            offer_expires_at=None,
            wait_estimate_seconds=estimate_seconds,
        )
        tx.event(
            "waiting",
            branch=task.target_branch,
            task=task,
            state=WAITING,
            teller_id=actor.id,
            detail=f"teller {actor.id} asks to wait about {estimate_seconds} s"
            + (f": {reason}" if reason else ""),
        )
    else:
        assert answer == REJECT
        offers.close_offer(tx, task, "rejected", reason)
        event = tx.event(
            "rejected",
            branch=task.target_branch,
            task=task,
            teller_id=actor.id,
            detail=f"rejected by teller {actor.id}" + (f": {reason}" if reason else ""),
        )
        offers.release(core, tx, actor.id, pull=False)
        offers.set_event_state(tx, event, offers.route(core, tx, task, task.state))
        offers.pull_next(core, tx, actor.id)


@store.retrying
def reassign(
    core: Core,
    actor: Actor,
    task_id: str,
    to_teller_id: str,
    reason: str = "",
    *,
    via: str = "reassigned",
) -> Task:
    """Hand a task to a named teller of its branch: by the teller holding it, or by a
    lobby manager of the branch (``designate``: the same for a task at the lobby)."""
    check.ident("task_id", task_id)
    check.ident("to_teller_id", to_teller_id)
    check.text("reason", reason, check.MAX_REASON)
    with core.tx() as tx:
        task = checks.task_or_404(tx.conn, task_id, lock=True)
        if actor.role == TELLER:
            checks.check_holder(tx.conn, actor, task)
        elif actor.role == LOBBY:
            checks.check_lobby(tx.conn, actor, task)
        elif actor.role != OPERATOR:
            raise PermissionDenied(
                f"tasks are reassigned by their teller or a lobby manager; not {actor}", rule="role"
            )
        if task.state not in OPEN_STATES:
            raise FailedPrecondition(f"task {task_id} is {task.state}: it can no longer move")
        holder = task.teller_id if task.state in HELD_STATES else None
        if holder == to_teller_id:
            raise FailedPrecondition(
                f"to_teller_id: teller {to_teller_id} already holds task {task_id}",
                field="to_teller_id",
            )
        _check_target(tx, task, to_teller_id, holder)
        by = f" by {actor}" + (f": {reason}" if reason else "")
        if holder is not None:
            offers.close_offer(tx, task, "withdrawn", f"{via} to {to_teller_id}{by}")
            tx.event(
                "reassigned",
                branch=task.target_branch,
                task=task,
                state=OFFERED,
                teller_id=holder,
                detail=f"from teller {holder} to teller {to_teller_id}{by}",
            )
            offers.release(core, tx, holder, pull=False)
        else:
            tx.event(
                "designated",
                branch=task.target_branch,
                task=task,
                state=OFFERED,
                detail=f"teller {to_teller_id} designated{by}",
            )
        offers.offer(core, tx, task, task.state, to_teller_id, via, str(actor), reason, free=False)
        if holder is not None:
            offers.pull_next(core, tx, holder)
        return checks.read_task(tx, task_id)


def _check_target(tx: store.Tx, task: Row[Any], to_teller_id: str, holder: str | None) -> None:
    """The teller a task moves to (locked, with its holder, in id order): of the task's
    branch, on duty and present, with the skill."""
    task_id = task.task_id
    rows = store.lock_tellers(tx.conn, [to_teller_id, *([holder] if holder else [])])
    target = rows.get(to_teller_id)
    if target is None:
        raise NotFound(f"to_teller_id: no teller {echo(to_teller_id)}", field="to_teller_id")
    if target.branch_id != task.target_branch:
        raise PermissionDenied(
            f"a task stays in its target branch: teller {to_teller_id} is of branch "
            f"{target.branch_id}, task {task_id} is for branch {task.target_branch}",
            rule="target_branch_only",
        )
    if not target.on_duty or target.away:
        raise FailedPrecondition(
            f"to_teller_id: teller {to_teller_id} is "
            f"{'off duty' if not target.on_duty else 'away'}",
            field="to_teller_id",
        )
    skills = store.skills_of(tx.conn, [to_teller_id])[to_teller_id]
    if task.business_type not in skills:
        raise FailedPrecondition(
            f"to_teller_id: teller {to_teller_id} lacks skill {echo(task.business_type)} "
            f"that task {task_id} needs",
            field="to_teller_id",
        )


def designate(core: Core, actor: Actor, task_id: str, teller_id: str, reason: str = "") -> Task:
    if actor.role not in (LOBBY, OPERATOR):
        raise PermissionDenied(
            f"designating a teller is for lobby managers; not {actor}", rule="role"
        )
    return reassign(core, actor, task_id, teller_id, reason, via="designated")


@store.retrying
def complete(core: Core, actor: Actor, task_id: str, success: bool, reason: str = "") -> Task:
    """The teller's reviewed result, sent back to the origin."""
    check.ident("task_id", task_id)
    check.text("reason", reason, check.MAX_REASON)
    if not success and not reason.strip():
        raise InvalidArgument("reason", "required when the result is a failure")
    if actor.role != TELLER:
        raise PermissionDenied(
            f"results come from the teller holding the task; not {actor}", rule="role"
        )
    with core.tx() as tx:
        task = checks.task_or_404(tx.conn, task_id, lock=True)
        checks.check_holder(tx.conn, actor, task)
        if task.state != ACCEPTED:
            raise FailedPrecondition(
                f"task {task_id} is {task.state}: accept it before returning a result"
            )
        outcome = SUCCESS if success else FAILURE
        offers.update_task(
            tx, task, state=DONE, result_outcome=outcome, result_reason=reason or None
        )
        tx.event(
            "completed",
            branch=task.target_branch,
            task=task,
            state=DONE,
            teller_id=actor.id,
            detail=outcome + (f": {reason}" if reason else ""),
        )
        offers.release(core, tx, actor.id, handled=True, pull=True)
        return checks.read_task(tx, task_id)
