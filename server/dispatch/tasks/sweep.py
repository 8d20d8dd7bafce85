"""The sweep every replica runs: offers past their time move on, free tellers are matched with
waiting tasks."""

from __future__ import annotations

from sqlalchemy import and_, exists, false, select, true, update

from branchline.server.dispatch import store
from branchline.server.dispatch.model import (
    OFFERED,
    UNASSIGNED_STATES,
)
from branchline.server.dispatch.schema import task_offers, tasks, teller_skills, tellers
from branchline.server.dispatch.tasks import offers
from branchline.server.dispatch.tasks.core import EXPIRE_BATCH, Core


@store.retrying
def expire_offers(core: Core, limit: int = EXPIRE_BATCH) -> list[str]:
    """Offers past their time move on; the teller who missed one is marked away.

    Safe on every replica at once: each expired offer is handled by exactly one.
    """
    with core.tx() as tx:
        due = tx.conn.execute(
            select(tasks)
            .where(tasks.c.state == OFFERED, tasks.c.offer_expires_at <= tx.now)
            .order_by(tasks.c.offer_expires_at, tasks.c.task_id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        for task in due:
            teller_id = task.teller_id
            offers.close_offer(tx, task, "expired", "no answer in time")
            event = tx.event(
                "expired",
                branch=task.target_branch,
                task=task,
                teller_id=teller_id,
                detail=f"teller {teller_id} did not answer within {core.offer_timeout:g} s",
            )
            away = tx.conn.execute(
                update(tellers)
                .where(tellers.c.teller_id == teller_id, tellers.c.away == false())
                .values(away=True, updated_at=tx.now)
                .returning(tellers.c.branch_id)
            ).first()
            if away is not None:
                tx.event(
                    "away",
                    branch=away.branch_id,
                    teller_id=teller_id,
                    detail=f"teller {teller_id} marked away: missed an offer",
                )
            offers.release(core, tx, teller_id, pull=False)
            offers.set_event_state(tx, event, offers.route(core, tx, task, OFFERED))
        return [task.task_id for task in due]


@store.retrying
def match_free_tellers(core: Core, limit: int = 50) -> int:
    """Offer waiting tasks to free tellers that could take them; the number offered.

    A safety net for the sweep: a teller becoming free skips tasks another transaction
    holds at that instant, and may then have found nothing.
    """
    already = exists().where(
        task_offers.c.task_id == tasks.c.task_id,
        task_offers.c.teller_id == tellers.c.teller_id,
        task_offers.c.answer.in_(("rejected", "expired")),
    )
    query = (
        select(tellers.c.teller_id)
        .distinct()
        .join(teller_skills, teller_skills.c.teller_id == tellers.c.teller_id)
        .join(
            tasks,
            and_(
                tasks.c.target_branch == tellers.c.branch_id,
                tasks.c.business_type == teller_skills.c.skill,
                tasks.c.state.in_(UNASSIGNED_STATES),
                ~already,
            ),
        )
        .where(tellers.c.on_duty == true(), tellers.c.away == false(), tellers.c.load == 0)
        .order_by(tellers.c.teller_id)
        .limit(limit)
    )
    offered = 0
    with core.tx() as tx:
        for (teller_id,) in tx.conn.execute(query).all():
            offers.pull_next(core, tx, teller_id)
            row = tx.conn.execute(
                select(tellers.c.load).where(tellers.c.teller_id == teller_id)
            ).first()
            offered += 1 if row is not None and row.load > 0 else 0
    return offered
