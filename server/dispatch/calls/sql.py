"""The statements of the call paths, built once with named parameters (see ``store``)."""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import (
    Select,
    any_,
    bindparam,
    exists,
    func,
    select,
    true,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY

from branchline.server.dispatch.call_schema import calls
from branchline.server.dispatch.calls.model import ENDED, HANDLE_SAMPLE, OPEN, QUEUED, RINGING
from branchline.server.dispatch.queue import PG_SKILLS, Queue, sqlite_skills
from branchline.server.dispatch.schema import branches, teller_skills, tellers

QUEUE = Queue(calls, id="call_id", branch="branch")

NOW = bindparam("b_now", type_=calls.c.updated_at.type)
READ_CALL = select(calls).where(calls.c.call_id == bindparam("b_call_id"))
LOCK_CALL = READ_CALL.with_for_update()
TERMINAL_REQUEST_OR_OPEN = union_all(
    select(calls).where(
        calls.c.terminal_id == bindparam("b_terminal_id"),
        calls.c.request_id == bindparam("b_request_id"),
    ),
    select(calls).where(calls.c.terminal_id == bindparam("b_terminal_id"), calls.c.state.in_(OPEN)),
)
OPEN_CALLS_OF = select(calls).where(
    calls.c.terminal_id.in_(bindparam("b_terminal_ids", expanding=True)), calls.c.state.in_(OPEN)
)
BRANCH_STRATEGY = select(branches.c.routing_strategy).where(
    branches.c.branch_id == bindparam("b_branch_id")
)
INSERT_CALL = calls.insert().returning(*calls.c)
RING = (
    update(calls)
    .where(calls.c.call_id == bindparam("b_call_id"), calls.c.state == QUEUED)
    .values(state=RINGING, teller_id=bindparam("b_teller_id"), routed_at=NOW, updated_at=NOW)
)
FINISH = (
    update(calls)
    .where(calls.c.call_id == bindparam("b_call_id"), calls.c.state == bindparam("b_expect"))
    .values(
        state=bindparam("b_state"), ended_at=NOW, end_reason=bindparam("b_reason"), updated_at=NOW
    )
    .returning(*calls.c)
)
# A branch's queued calls of one business type, in queue order (its index).
QUEUE_ORDER = QUEUE.order()
NEXT_QUEUED_IN_ORDER = (
    select(calls)
    .where(
        calls.c.branch == bindparam("b_branch"),
        calls.c.state == QUEUED,
        calls.c.business_type
        == any_(bindparam("b_skills", type_=ARRAY(calls.c.business_type.type))),
    )
    .order_by(*QUEUE_ORDER)
    .limit(1)
    .with_for_update(skip_locked=True)
)


QUEUE_IDS = (
    select(calls.c.call_id)
    .where(
        calls.c.branch == bindparam("b_branch"),
        calls.c.business_type == bindparam("b_business_type"),
        calls.c.state == QUEUED,
    )
    .order_by(*QUEUE_ORDER)
)
LAST_HANDLED = (
    select(calls.c.answered_at, calls.c.ended_at)
    .where(
        calls.c.branch == bindparam("b_branch"),
        calls.c.state == ENDED,
        calls.c.answered_at.is_not(None),
    )
    .order_by(calls.c.ended_at.desc())
    .limit(HANDLE_SAMPLE)
)
# On-duty tellers of the branch with the skill: from the skill's tellers (its index), each
# checked by primary key.
SERVING = (
    select(func.count())
    .select_from(teller_skills)
    .where(
        teller_skills.c.skill == bindparam("b_business_type"),
        exists().where(
            tellers.c.teller_id == teller_skills.c.teller_id,
            tellers.c.branch_id == bindparam("b_branch"),
            tellers.c.on_duty == true(),
        ),
    )
)
# The queued calls ahead of one (same queue, earlier in its order) and the tellers serving
# the queue, in one statement; the row comparison reads a range of the queue's index.
AHEAD_AND_SERVING = select(
    select(func.count())
    .select_from(calls)
    .where(
        calls.c.branch == bindparam("b_branch"),
        calls.c.state == QUEUED,
        calls.c.business_type == bindparam("b_business_type"),
        tuple_(calls.c.created_at, calls.c.call_id)
        < tuple_(
            bindparam("b_created_at", type_=calls.c.created_at.type),
            bindparam("b_call_id", type_=calls.c.call_id.type),
        ),
    )
    .scalar_subquery()
    .label("ahead"),
    SERVING.scalar_subquery().label("serving"),
)


# -- the oldest queued call a free teller can take (the shared queue module) ---------------

# PostgreSQL: the oldest of the skills' queue heads (LATERAL over the teller's skills), then
# that call locked unless another transaction holds it. One row: the head's id and the
# locked call (all NULL when the head was held or changed meanwhile); no row: no call.
_PG_QUEUE_HEAD = QUEUE.head(PG_SKILLS.c.skill, QUEUED).lateral("queue_head")
_PG_FIRST = (
    select(_PG_QUEUE_HEAD.c.call_id)
    .select_from(PG_SKILLS.join(_PG_QUEUE_HEAD, true()))
    .order_by(_PG_QUEUE_HEAD.c.created_at, _PG_QUEUE_HEAD.c.call_id)
    .limit(1)
    .cte("first_call")
)
_PG_LOCKED = (
    select(calls)
    .where(calls.c.call_id == _PG_FIRST.c.call_id, calls.c.state == QUEUED)
    .with_for_update(of=calls, skip_locked=True)
    .lateral("locked")
)
PG_NEXT_QUEUED = select(_PG_FIRST.c.call_id.label("head_id"), _PG_LOCKED).select_from(
    _PG_FIRST.outerjoin(_PG_LOCKED, true())
)


@functools.cache
def sqlite_next_queued(skills: int) -> Select[Any]:
    """SQLite (no LATERAL): the oldest of the skills' queue heads, by UNION ALL."""
    heads = union_all(
        *(select(QUEUE.head(skill, QUEUED).subquery()) for skill in sqlite_skills(skills))
    ).subquery()
    first = select(heads.c.call_id).order_by(heads.c.created_at, heads.c.call_id).limit(1)
    return select(calls).where(calls.c.call_id == first.scalar_subquery())
