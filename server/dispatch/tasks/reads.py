"""Reads: a task with its history, the task lists each role sees, and the event feed watchers
follow."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import LargeBinary, func, select

from branchline.common.errors import InvalidArgument, PermissionDenied, echo
from branchline.common.image_types import SNIFF_BYTES
from branchline.server.dispatch import store
from branchline.server.dispatch import validate as check
from branchline.server.dispatch.model import (
    HELD_STATES,
    LOBBY,
    OPEN_STATES,
    TASK_STATES,
    TELLER,
    Actor,
    DispatchEvent,
    LobbyManager,
    Task,
)
from branchline.server.dispatch.schema import (
    dispatch_events,
    material_blobs,
    task_materials,
    task_offers,
    tasks,
)
from branchline.server.dispatch.tasks import checks, roster
from branchline.server.dispatch.tasks.core import LIST_LIMIT, OPERATOR, TERMINAL, Core, EventScope


def get_task(core: Core, actor: Actor, task_id: str) -> Task:
    """A task with its materials, offers and event history, if ``actor`` may see it."""
    check.ident("task_id", task_id)
    with core.engine.connect() as conn:
        task = checks.task_or_404(conn, task_id)
        checks.check_read(conn, actor, task)
        materials = [
            store.material_from_row(row)
            for row in conn.execute(
                # The first bytes of each (none once deleted): the image type, sniffed.
                select(
                    task_materials,
                    func.substr(material_blobs.c.data, 1, SNIFF_BYTES, type_=LargeBinary).label(
                        "head"
                    ),
                )
                .select_from(
                    task_materials.outerjoin(
                        material_blobs, material_blobs.c.sha256 == task_materials.c.sha256
                    )
                )
                .where(task_materials.c.task_id == task_id)
                .order_by(task_materials.c.uploaded_at, task_materials.c.name)
            )
        ]
        offers = [
            store.offer_from_row(row)
            for row in conn.execute(
                select(task_offers)
                .where(task_offers.c.task_id == task_id)
                .order_by(task_offers.c.offer_id)
            )
        ]
        events = [
            store.event_from_row(row)
            for row in conn.execute(
                select(dispatch_events)
                .where(dispatch_events.c.task_id == task_id)
                .order_by(dispatch_events.c.id)
            )
        ]
        return store.task_from_row(task, materials, offers, events)


def list_tasks(
    core: Core,
    actor: Actor,
    states: Sequence[str] = (),
    branch: str | None = None,
    limit: int = LIST_LIMIT,
) -> list[Task]:
    """Tasks the actor may see, newest first: an origin's own, a teller's held (and
    finished) ones, a lobby manager's branch, any for operators."""
    for i, state in enumerate(states):
        if state not in TASK_STATES:
            raise InvalidArgument(f"states[{i}]", f"unknown task state {echo(state)}")
    query = select(tasks).order_by(tasks.c.created_at.desc(), tasks.c.task_id).limit(limit)
    if actor.role == TERMINAL:
        query = query.where(tasks.c.origin_terminal == actor.id)
    elif actor.role == TELLER:
        query = query.where(tasks.c.teller_id == actor.id)
    elif actor.role == LOBBY:
        manager = roster.staff(core, actor)
        assert isinstance(manager, LobbyManager)
        if branch and branch != manager.branch_id:
            raise PermissionDenied(
                f"a lobby manager acts only within their branch: {actor} is of branch "
                f"{manager.branch_id}, not {branch}",
                rule="own_branch_only",
            )
        branch = manager.branch_id
    elif actor.role != OPERATOR:
        raise PermissionDenied(f"no task list for {actor}", rule="role")
    if branch:
        query = query.where(tasks.c.target_branch == branch)
    if states:
        query = query.where(tasks.c.state.in_(list(states)))
    with core.engine.connect() as conn:
        return [store.task_from_row(row) for row in conn.execute(query)]


def open_tasks(core: Core, scope: EventScope) -> list[Task]:
    """What a watcher starts from: the open tasks in its scope, oldest first."""
    query = select(tasks).order_by(tasks.c.created_at, tasks.c.task_id)
    if scope.teller_id is not None:
        query = query.where(tasks.c.teller_id == scope.teller_id, tasks.c.state.in_(HELD_STATES))
    else:
        query = query.where(tasks.c.state.in_(OPEN_STATES))
    if scope.origin_terminal is not None:
        query = query.where(tasks.c.origin_terminal == scope.origin_terminal)
    if scope.branch is not None:
        query = query.where(tasks.c.target_branch == scope.branch)
    if scope.task_id is not None:
        query = query.where(tasks.c.task_id == scope.task_id)
    with core.engine.connect() as conn:
        return [store.task_from_row(row) for row in conn.execute(query.limit(LIST_LIMIT))]


def read_task(core: Core, task_id: str) -> Task | None:
    """A task without access checks (for a watcher that already passed them)."""
    with core.engine.connect() as conn:
        row = conn.execute(select(tasks).where(tasks.c.task_id == task_id)).first()
        return store.task_from_row(row) if row is not None else None


def events_after(
    core: Core, scope: EventScope, after_id: int, limit: int = LIST_LIMIT
) -> list[DispatchEvent]:
    """Events in ``scope`` with id > ``after_id``, oldest first."""
    query = (
        select(dispatch_events)
        .where(dispatch_events.c.id > after_id)
        .order_by(dispatch_events.c.id)
        .limit(limit)
    )
    for column, value in (
        (dispatch_events.c.origin_terminal, scope.origin_terminal),
        (dispatch_events.c.teller_id, scope.teller_id),
        (dispatch_events.c.branch, scope.branch),
        (dispatch_events.c.task_id, scope.task_id),
    ):
        if value is not None:
            query = query.where(column == value)
    with core.engine.connect() as conn:
        return [store.event_from_row(row) for row in conn.execute(query)]


def latest_event_id(core: Core) -> int:
    with core.engine.connect() as conn:
        return int(
            conn.execute(select(func.coalesce(func.max(dispatch_events.c.id), 0))).scalar_one()
        )
