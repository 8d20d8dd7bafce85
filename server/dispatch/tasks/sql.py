"""The statements of the task paths, built once with named parameters (see ``store``)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BindParameter,
    CompoundSelect,
    Executable,
    Integer,
    Select,
    bindparam,
    case,
    exists,
    func,
    literal,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY

from branchline.server.dispatch.model import (
    AT_LOBBY,
    UNASSIGNED_STATES,
)
from branchline.server.dispatch.queue import (
    PG_SKILLS,
    REJECTED_OR_EXPIRED,
    Queue,
    skill_params,
    sqlite_skills,
)
from branchline.server.dispatch.schema import (
    branches,
    lobby_managers,
    task_offers,
    tasks,
    teller_skills,
    tellers,
)


def _now() -> BindParameter[datetime]:
    return bindparam("b_now", type_=tellers.c.updated_at.type)


READ_TASK = select(tasks).where(tasks.c.task_id == bindparam("b_task_id"))
TASK_BY_REQUEST = select(tasks).where(
    tasks.c.origin_terminal == bindparam("b_origin_terminal"),
    tasks.c.request_id == bindparam("b_request_id"),
)
# A new task, in one statement: inserted only if its target branch exists (selected from
# branches) and its origin has not used the request_id yet (the unique key absorbs the
# conflict); the row comes back with the branch's routing strategy. No row: either case,
# which the caller then tells apart.
NEW_TASK_COLUMNS = [
    "task_id",
    "request_id",
    "origin_terminal",
    "origin_branch",
    "target_branch",
    "business_type",
    "title",
    "fields",
    "note",
    "customer_ref",
    "state",
    "created_at",
    "updated_at",
]
NEW_TASK_ROW = select(
    *(
        branches.c.branch_id
        if name == "target_branch"
        else bindparam(f"b_{name}", type_=tasks.c[name].type)
        for name in NEW_TASK_COLUMNS
    )
).where(branches.c.branch_id == bindparam("b_target_branch"))
BRANCH_STRATEGY = (
    select(branches.c.routing_strategy)
    .where(branches.c.branch_id == bindparam("b_target_branch"))
    .scalar_subquery()
    .label("branch_strategy")
)
PG_INSERT_NEW_TASK = (
    postgresql.insert(tasks)
    .from_select(NEW_TASK_COLUMNS, NEW_TASK_ROW)
    .on_conflict_do_nothing(index_elements=[tasks.c.origin_terminal, tasks.c.request_id])
    .returning(*tasks.c, BRANCH_STRATEGY)
)
SQLITE_INSERT_NEW_TASK = (
    sqlite.insert(tasks)
    .from_select(NEW_TASK_COLUMNS, NEW_TASK_ROW)
    .on_conflict_do_nothing(index_elements=[tasks.c.origin_terminal, tasks.c.request_id])
    .returning(*tasks.c, BRANCH_STRATEGY)
)
# SET from the column-named parameters; the row as written comes back.
UPDATE_TASK = (
    update(tasks)
    .where(tasks.c.task_id == bindparam("b_task_id"), tasks.c.state == bindparam("b_expect"))
    .returning(*tasks.c)
)
UPDATE_TELLER = (
    update(tellers).where(tellers.c.teller_id == bindparam("b_teller_id")).returning(*tellers.c)
)
NOW = _now()
RELEASE = (
    update(tellers)
    .where(tellers.c.teller_id == bindparam("b_teller_id"), tellers.c.load > 0)
    .values(
        load=tellers.c.load - 1,
        handled=tellers.c.handled + bindparam("b_handled", type_=Integer()),
        idle_since=case((tellers.c.load == 1, NOW), else_=tellers.c.idle_since),
        updated_at=NOW,
    )
    # The row as written (locked by the UPDATE) and the teller's skills, space-separated
    # (a skill is [a-z][a-z0-9_]*): what the pull for the next task needs, in this round trip.
    .returning(
        *tellers.c,
        select(func.aggregate_strings(teller_skills.c.skill, " "))
        .where(teller_skills.c.teller_id == bindparam("b_teller_id"))
        .scalar_subquery()
        .label("skills"),
    )
)
INSERT_OFFER = task_offers.insert().returning(task_offers.c.offer_id)
CLOSE_OFFER = (
    update(task_offers)
    .where(task_offers.c.offer_id == bindparam("b_offer_id"))
    .values(answer=bindparam("b_answer"), reason=bindparam("b_reason"))
)
CLOSE_OWN_OFFER = CLOSE_OFFER.values(answered_at=func.coalesce(task_offers.c.answered_at, _now()))
MANAGERS_ON_DUTY = select(lobby_managers.c.manager_id).where(
    lobby_managers.c.branch_id == bindparam("b_branch_id"), lobby_managers.c.on_duty == true()
)
PENDING_AT_LOBBY = (
    select(tasks.c.lobby_manager_id, func.count())
    .where(tasks.c.target_branch == bindparam("b_branch_id"), tasks.c.state == AT_LOBBY)
    .group_by(tasks.c.lobby_manager_id)
)


# -- the head of each queue a free teller serves (the shared queue module) ---------------

QUEUE = Queue(tasks, id="task_id", branch="target_branch")
HEAD_COLUMNS = (
    tasks.c.task_id,
    tasks.c.business_type,
    tasks.c.state,
    tasks.c.created_at,
    tasks.c.target_branch,
    tasks.c.origin_terminal,
    tasks.c.offer_id,
)
# Tasks teller ``b_teller_id`` rejected or let expire are not theirs to take.
_NOT_REJECTED = ~exists().where(
    task_offers.c.task_id == tasks.c.task_id,
    task_offers.c.teller_id == bindparam("b_teller_id"),
    task_offers.c.answer.in_(REJECTED_OR_EXPIRED),
)
# PostgreSQL: one head per (skill, unassigned state) pair, LATERAL over both.
_PG_STATES = (
    func.unnest(
        bindparam("b_states", value=list(UNASSIGNED_STATES), type_=ARRAY(tasks.c.state.type))
    )
    .table_valued("state")
    .render_derived(name="unassigned")
)
_PG_HEADS = QUEUE.head(
    PG_SKILLS.c.skill, _PG_STATES.c.state, _NOT_REJECTED, columns=HEAD_COLUMNS, lock=True
).lateral("head")
_PG_QUEUE_HEADS = select(_PG_HEADS).select_from(
    PG_SKILLS.join(_PG_STATES, true()).join(_PG_HEADS, true())
)


@functools.cache
def _sqlite_queue_heads(skills: int) -> Select[Any] | CompoundSelect[Any]:
    """SQLite (no LATERAL): the heads as a UNION ALL, one branch per (skill, state)."""
    heads = [
        select(
            QUEUE.head(
                skill, literal(state), _NOT_REJECTED, columns=HEAD_COLUMNS, lock=True
            ).subquery()
        )
        for skill in sqlite_skills(skills)
        for state in UNASSIGNED_STATES
    ]
    return union_all(*heads)


def queue_heads(
    postgres: bool, branch_id: str, skills: Sequence[str], teller_id: str
) -> tuple[Executable, dict[str, Any]]:
    """The statement and parameters reading the head of each queue a teller can serve:
    the oldest task of each (skill, unassigned state) the teller has not rejected nor let
    expire, each locked unless another transaction holds it (then the next one)."""
    params: dict[str, Any] = {"b_branch": branch_id, "b_teller_id": teller_id}
    params.update(skill_params(postgres, skills))
    statement = _PG_QUEUE_HEADS if postgres else _sqlite_queue_heads(len(skills))
    return statement, params
