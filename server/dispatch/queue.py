"""The branch queues, shared by tasks and video calls: the head of a queue and the free
tellers who may take from it.

A queue is the waiting items of one (branch, business type) in arrival order; a teller
serves the queues of their branch named by their skills. Tasks and calls keep their own
tables, but a teller takes either one the same way: the head of each queue they serve
(one index read each, however long the queue) and, the other way round, the first free
tellers of the skill in strategy order. Both are built here, once.

PostgreSQL reads the heads of all the teller's queues in one statement by LATERAL over the
skills (the same statement and plan whatever their number); SQLite, without LATERAL, by a
UNION ALL of one head per skill (a statement per number of skills, cached).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    Table,
    and_,
    bindparam,
    exists,
    false,
    func,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY

from branchline.server.dispatch import routing, store
from branchline.server.dispatch.model import LONGEST_IDLE, RANDOM
from branchline.server.dispatch.schema import task_offers, teller_skills, tellers

# How many free tellers one routing decision looks at: the first of them in strategy
# order wins unless another replica holds its row.
CANDIDATES = 8
RANDOM_CANDIDATES = 64

# Offer answers after which a teller is never offered that task again.
REJECTED_OR_EXPIRED = ("rejected", "expired")

# PostgreSQL: the teller's skills as a table (``b_skills``), to read one head per skill.
PG_SKILLS = (
    func.unnest(bindparam("b_skills", type_=ARRAY(teller_skills.c.skill.type)))
    .table_valued("skill")
    .render_derived(name="teller_skill")
)


@dataclass(frozen=True)
class Queue:
    """A table whose rows wait in branch queues: its id, branch, business type, state and
    arrival columns (the queue order is arrival, then id)."""

    table: Table
    id: str
    branch: str
    business_type: str = "business_type"
    state: str = "state"
    created_at: str = "created_at"

    def order(self) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
        return (self.table.c[self.created_at], self.table.c[self.id])

    def head(
        self,
        business_type: ColumnElement[str],
        state: ColumnElement[str] | str,
        *where: ColumnElement[bool],
        columns: Sequence[ColumnElement[Any]] = (),
        lock: bool = False,
    ) -> Select[Any]:
        """The first row of one queue of branch ``b_branch`` (``where`` narrows it); with
        ``lock``, locked unless another transaction holds it (then the next one)."""
        c = self.table.c
        query = (
            select(*(columns or (c[self.id], c[self.created_at])))
            .where(
                c[self.branch] == bindparam("b_branch"),
                c[self.business_type] == business_type,
                c[self.state] == state,
                *where,
            )
            .order_by(*self.order())
            .limit(1)
        )
        return query.with_for_update(of=self.table, skip_locked=True) if lock else query


def sqlite_skills(count: int) -> list[ColumnElement[str]]:
    """SQLite: the teller's skills as ``b_skill_0`` .. ``b_skill_<count-1>``."""
    return [bindparam(f"b_skill_{i}") for i in range(count)]


def skill_params(postgres: bool, skills: Sequence[str]) -> dict[str, Any]:
    """The parameters naming the teller's skills for PG_SKILLS or sqlite_skills."""
    if postgres:
        return {"b_skills": list(skills)}
    return {f"b_skill_{i}": skill for i, skill in enumerate(skills)}


# -- the tellers' side: who is free to take ----------------------------------------------

_NOW = bindparam("b_now", type_=tellers.c.updated_at.type)
_TAKE = (
    update(tellers)
    .where(tellers.c.teller_id == bindparam("b_teller_id"))
    .values(load=tellers.c.load + 1, updated_at=_NOW)
    .returning(*tellers.c)
)
_TAKE_FREE = _TAKE.where(
    tellers.c.on_duty == true(), tellers.c.away == false(), tellers.c.load == 0
)


@functools.cache
def _free_tellers_query(strategy: str, excluding: bool) -> Select[Any]:
    """Free tellers of ``b_branch_id`` with ``b_skill``, first ones in strategy order;
    ``excluding``: less those who rejected task ``b_task_id`` or let its offer expire."""
    query = (
        select(tellers)
        .join(
            teller_skills,
            and_(
                teller_skills.c.teller_id == tellers.c.teller_id,
                teller_skills.c.skill == bindparam("b_skill"),
            ),
        )
        .where(
            tellers.c.branch_id == bindparam("b_branch_id"),
            tellers.c.on_duty == true(),
            tellers.c.load == 0,
            tellers.c.away == false(),
        )
    )
    if excluding:
        query = query.where(
            ~exists().where(
                task_offers.c.task_id == bindparam("b_task_id"),
                task_offers.c.teller_id == tellers.c.teller_id,
                task_offers.c.answer.in_(REJECTED_OR_EXPIRED),
            )
        )
    if strategy == RANDOM:
        return query.order_by(func.random()).limit(RANDOM_CANDIDATES)
    order = (
        (tellers.c.idle_since, tellers.c.teller_id)
        if strategy == LONGEST_IDLE
        else (tellers.c.handled, tellers.c.idle_since, tellers.c.teller_id)
    )
    return query.order_by(*order).limit(CANDIDATES)


def page_size(strategy: str) -> int:
    """How many candidates free_tellers reads at most for ``strategy``."""
    return RANDOM_CANDIDATES if strategy == RANDOM else CANDIDATES


def free_tellers(
    conn: Connection,
    branch_id: str,
    skill: str,
    strategy: str,
    task_id: str | None = None,
) -> list[routing.TellerCandidate]:
    """The first free tellers of the branch with ``skill`` in ``strategy`` order, less
    those who rejected task ``task_id`` or let its offer expire."""
    params = {"b_branch_id": branch_id, "b_skill": skill}
    if task_id is not None:
        params["b_task_id"] = task_id
    # No lock here: take's conditional UPDATE decides, waiting for a concurrent offer to
    # the same teller to commit and then moving on to the next candidate.
    rows = conn.execute(_free_tellers_query(strategy, task_id is not None), params).all()
    return [
        routing.TellerCandidate(
            teller_id=row.teller_id,
            skills=frozenset((skill,)),
            on_duty=bool(row.on_duty),
            away=bool(row.away),
            load=int(row.load),
            idle_since=row.idle_since,
            handled=int(row.handled),
        )
        for row in rows
    ]


def take(tx: store.Tx, teller_id: str, *, free: bool) -> bool:
    """One more task or call for the teller; with ``free`` only if on duty, present and
    idle.

    The condition is in the UPDATE itself, so it holds against every concurrent writer on
    every replica, whatever was read before.
    """
    statement = _TAKE_FREE if free else _TAKE
    row = tx.conn.execute(statement, {"b_teller_id": teller_id, "b_now": tx.now}).first()
    if row is None:
        return False
    tx.teller_rows[teller_id] = row
    return True
