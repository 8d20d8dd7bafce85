"""Consistency of the dispatch tables, checked by tests after each one (test-only code)."""

from __future__ import annotations

from sqlalchemy import Engine, func, select

from branchline.server.dispatch.call_schema import calls
from branchline.server.dispatch.model import HELD_STATES, OFFERED
from branchline.server.dispatch.schema import (
    material_blobs,
    task_materials,
    task_offers,
    tasks,
    tellers,
)


def check_invariants(engine: Engine) -> list[str]:
    """What is inconsistent, for tests: each teller's load equals the tasks held, no task
    is held without a teller, no task has two open offers, no material whose bytes are
    kept lacks them (the retention deletes a blob only once no kept entry refers to it)."""
    problems: list[str] = []
    with engine.connect() as conn:
        held: dict[str, int] = {}
        for row in conn.execute(select(tasks).where(tasks.c.state.in_(HELD_STATES))):
            if row.teller_id is None or row.offer_id is None:
                problems.append(f"task {row.task_id} is {row.state} without teller or offer")
                continue
            held[row.teller_id] = held.get(row.teller_id, 0) + 1
        # Video calls ringing at or answered by a teller count in the load as tasks do.
        for row in conn.execute(
            select(calls.c.teller_id).where(calls.c.state.in_(("ringing", "active")))
        ):
            held[row.teller_id] = held.get(row.teller_id, 0) + 1
        for row in conn.execute(select(tellers.c.teller_id, tellers.c.load)):
            if row.load != held.get(row.teller_id, 0):
                problems.append(
                    f"teller {row.teller_id} load {row.load} but holds {held.get(row.teller_id, 0)}"
                )
        for row in conn.execute(
            select(task_offers.c.task_id, func.count())
            .where(task_offers.c.answer.is_(None))
            .group_by(task_offers.c.task_id)
            .having(func.count() > 1)
        ):
            problems.append(f"task {row[0]} has {row[1]} open offers")
        for row in conn.execute(
            select(tasks.c.task_id, tasks.c.offer_id, tasks.c.state).where(tasks.c.state == OFFERED)
        ):
            offer = conn.execute(
                select(task_offers.c.answer).where(task_offers.c.offer_id == row.offer_id)
            ).first()
            if offer is None or offer.answer is not None:
                problems.append(f"task {row.task_id} is offered but offer {row.offer_id} is closed")
        for row in conn.execute(
            select(task_materials.c.task_id, task_materials.c.name)
            .select_from(
                task_materials.outerjoin(
                    material_blobs, material_blobs.c.sha256 == task_materials.c.sha256
                )
            )
            .where(task_materials.c.deleted_at.is_(None), material_blobs.c.sha256.is_(None))
        ):
            problems.append(f"material {row.name} of task {row.task_id} has lost its bytes")
    return problems
