"""Who may act on which task, and the small reads the operations share (a task or a branch or a
teller, or NOT_FOUND naming the field)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, select

from branchline.common.errors import FailedPrecondition, NotFound, PermissionDenied, echo
from branchline.server.dispatch import store
from branchline.server.dispatch.model import (
    HELD_STATES,
    LOBBY,
    TELLER,
    Actor,
    Branch,
    Task,
    Teller,
)
from branchline.server.dispatch.schema import task_offers, tasks
from branchline.server.dispatch.tasks import sql
from branchline.server.dispatch.tasks.core import OPERATOR, TERMINAL, Core


def check_holder(conn: Connection, actor: Actor, task: Row[Any]) -> None:
    """A teller acts only on their own offers and tasks."""
    if actor.role != TELLER:
        raise PermissionDenied(
            f"only the teller holding task {task.task_id} may do this", rule="task_holder_only"
        )
    if task.teller_id == actor.id and task.state in HELD_STATES:
        return
    if task.teller_id == actor.id:
        raise FailedPrecondition(f"task {task.task_id} is {task.state}")
    last = conn.execute(
        select(task_offers)
        .where(task_offers.c.task_id == task.task_id, task_offers.c.teller_id == actor.id)
        .order_by(task_offers.c.offer_id.desc())
        .limit(1)
    ).first()
    where = f"; it is now {task.state}" + (
        f" with teller {task.teller_id}" if task.state in HELD_STATES else ""
    )
    if last is not None:
        raise PermissionDenied(
            f"a teller acts only on their own offers and tasks: task {task.task_id} is no "
            f"longer teller {actor.id}'s (offer {last.offer_id} {last.answer}){where}",
            rule="own_tasks_only",
        )
    raise PermissionDenied(
        f"a teller acts only on their own offers and tasks: task {task.task_id} was "
        f"never offered to teller {actor.id}",
        rule="own_tasks_only",
    )


def check_lobby(conn: Connection, actor: Actor, task: Row[Any]) -> None:
    manager = store.load_manager(conn, actor.id)
    if manager is None:
        raise PermissionDenied(f"{actor} has no staff record", rule="staff_record_required")
    if manager.branch_id != task.target_branch:
        raise PermissionDenied(
            f"a lobby manager acts only within their branch: task {task.task_id} is for "
            f"branch {task.target_branch}, {actor} is of branch {manager.branch_id}",
            rule="own_branch_only",
        )


def check_origin(actor: Actor, task: Row[Any]) -> None:
    if actor.role != TERMINAL or task.origin_terminal != actor.id:
        raise PermissionDenied(
            f"a terminal acts only on the tasks it sent: task {task.task_id} was sent by "
            f"terminal {task.origin_terminal}, not by {actor}",
            rule="origin_only",
        )


def check_read(conn: Connection, actor: Actor, task: Row[Any]) -> None:
    if actor.role == OPERATOR:
        return
    if actor.role == TERMINAL:
        check_origin(actor, task)
    elif actor.role == TELLER:
        if task.teller_id != actor.id:
            check_holder(conn, actor, task)
    elif actor.role == LOBBY:
        check_lobby(conn, actor, task)
    else:
        raise PermissionDenied(f"{actor} may not read tasks", rule="role")


def require_branch(conn: Connection, branch_id: str, field: str) -> Branch:
    branch = store.load_branch(conn, branch_id)
    if branch is None:
        raise NotFound(f"{field}: no branch {echo(branch_id)}", field=field)
    return branch


def teller_or_404(core: Core, teller_id: str, field: str) -> Teller:
    with core.engine.connect() as conn:
        teller = store.load_teller(conn, teller_id)
    if teller is None:
        raise NotFound(f"{field}: no teller {echo(teller_id)}", field=field)
    return teller


def task_or_404(conn: Connection, task_id: str, *, lock: bool = False) -> Row[Any]:
    row = (
        store.lock_task(conn, task_id)
        if lock
        else conn.execute(sql.READ_TASK, {"b_task_id": task_id}).first()
    )
    if row is None:
        raise NotFound(f"task_id: no task {echo(task_id)}", field="task_id")
    return row


def read_task(tx: store.Tx, task_id: str) -> Task:
    """The task as this transaction left it (as it last wrote it, or read afresh)."""
    row = tx.task_rows.get(task_id)
    if row is None:
        row = tx.conn.execute(sql.READ_TASK, {"b_task_id": task_id}).first()
    assert row is not None
    return store.task_from_row(row)


def task_by_request(conn: Connection, origin: str, request_id: str) -> Row[Any] | None:
    return conn.execute(
        sql.TASK_BY_REQUEST, {"b_origin_terminal": origin, "b_request_id": request_id}
    ).first()


def held_tasks(conn: Connection, teller_id: str) -> list[tuple[str, str]]:
    rows = conn.execute(
        select(tasks.c.task_id, tasks.c.state)
        .where(tasks.c.teller_id == teller_id, tasks.c.state.in_(HELD_STATES))
        .order_by(tasks.c.task_id)
    )
    return [(row.task_id, row.state) for row in rows]


def branch_tasks(conn: Connection, branch_id: str, state: str) -> list[Row[Any]]:
    return list(
        conn.execute(
            select(tasks)
            .where(tasks.c.target_branch == branch_id, tasks.c.state == state)
            .order_by(tasks.c.created_at, tasks.c.task_id)
            .with_for_update()
        )
    )
