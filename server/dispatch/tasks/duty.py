"""Duty and presence: a teller or lobby manager going on or off duty, a teller stepping away;
each may move tasks on."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from branchline.common.errors import FailedPrecondition, NotFound, PermissionDenied, echo
from branchline.server.dispatch import routing, store
from branchline.server.dispatch import validate as check
from branchline.server.dispatch.model import (
    AT_LOBBY,
    LOBBY,
    OFFERED,
    QUEUED,
    TELLER,
    Actor,
    LobbyManager,
    Teller,
)
from branchline.server.dispatch.schema import lobby_managers, tellers
from branchline.server.dispatch.tasks import checks, offers, roster, sql
from branchline.server.dispatch.tasks.core import OFF_DUTY_RETRIES, OPERATOR, Core


def set_duty(
    core: Core, actor: Actor, on_duty: bool, teller_id: str | None = None
) -> Teller | LobbyManager:
    """Put a teller (yourself; as lobby manager, one of your branch) or yourself on or
    off duty. Going off duty withdraws pending offers and is refused while the teller
    still holds accepted or waiting tasks."""
    if teller_id:
        check.ident("teller_id", teller_id)
    if actor.role == LOBBY and not teller_id:
        return manager_duty(core, actor, on_duty)
    target = teller_id or actor.id
    if actor.role == TELLER and target != actor.id:
        raise PermissionDenied(
            f"a teller sets only their own duty; the branch roster is kept by its lobby "
            f"manager ({actor} asked for teller {target})",
            rule="own_duty_only",
        )
    if actor.role == LOBBY:
        manager = roster.staff(core, actor)
        teller = checks.teller_or_404(core, target, "teller_id")
        if teller.branch_id != manager.branch_id:
            raise PermissionDenied(
                f"a lobby manager keeps the roster of their own branch only: teller "
                f"{target} is of branch {teller.branch_id}, {actor} of {manager.branch_id}",
                rule="own_branch_only",
            )
    elif actor.role == TELLER:
        roster.staff(core, actor)
    elif actor.role != OPERATOR:
        raise PermissionDenied(
            f"duty is set by tellers, lobby managers and operators; not {actor}", rule="role"
        )
    return teller_on(core, target, actor) if on_duty else teller_off(core, target, actor)


@store.retrying
def set_presence(core: Core, actor: Actor, away: bool) -> Teller:
    """A teller steps away (no offers) or comes back (and may get a queued task)."""
    if actor.role != TELLER:
        raise PermissionDenied(f"presence is a teller's own; not for {actor}", rule="role")
    with core.tx() as tx:
        row, skills = store.lock_teller_and_skills(tx.conn, actor.id)
        if row is None:
            raise PermissionDenied(f"{actor} has no staff record", rule="staff_record_required")
        if not row.on_duty:
            raise FailedPrecondition(f"away: {actor} is off duty; go on duty first", field="away")
        if bool(row.away) != away:
            values: dict[str, Any] = {"b_teller_id": actor.id, "away": away, "updated_at": tx.now}
            if not away and row.load == 0:
                values["idle_since"] = tx.now
            row = tx.conn.execute(sql.UPDATE_TELLER, values).one()
            tx.teller_rows[actor.id] = row
            tx.event(
                "away" if away else "back",
                branch=row.branch_id,
                teller_id=actor.id,
                detail=f"teller {actor.id} {'stepped away' if away else 'is back'}",
            )
            if not away:
                offers.pull_next(core, tx, actor.id, (row, skills))
            # Only _take writes the teller's row from here: as it left it.
            row = tx.teller_rows[actor.id]
        return store.teller_from_row(row, skills)


@store.retrying
def teller_on(core: Core, teller_id: str, actor: Actor) -> Teller:
    with core.tx() as tx:
        row = store.lock_teller(tx.conn, teller_id)
        if row is None:
            raise NotFound(f"teller_id: no teller {echo(teller_id)}", field="teller_id")
        if not row.on_duty:
            tx.conn.execute(
                update(tellers)
                .where(tellers.c.teller_id == teller_id)
                .values(on_duty=True, away=False, idle_since=tx.now, updated_at=tx.now)
            )
            tx.event(
                "on_duty",
                branch=row.branch_id,
                teller_id=teller_id,
                detail=f"teller {teller_id} on duty (by {actor})",
            )
            offers.pull_next(core, tx, teller_id)
        teller = store.load_teller(tx.conn, teller_id)
    assert teller is not None
    return teller


@store.retrying
def teller_off(core: Core, teller_id: str, actor: Actor) -> Teller:
    for _attempt in range(OFF_DUTY_RETRIES):
        with core.tx() as tx:
            for off_duty_check in core.off_duty_checks:
                off_duty_check(tx.conn, teller_id)
            held = checks.held_tasks(tx.conn, teller_id)
            busy = [(t, s) for t, s in held if s != OFFERED]
            if busy:
                listed = ", ".join(f"{t} ({s})" for t, s in busy)
                raise FailedPrecondition(
                    f"on_duty: teller {teller_id} still holds {listed}; finish or reassign first",
                    field="on_duty",
                )
            # Lock order: the offered tasks first, then the teller.
            locked = [store.lock_task(tx.conn, t) for t, _ in sorted(held)]
            row = store.lock_teller(tx.conn, teller_id)
            if row is None:
                raise NotFound(f"teller_id: no teller {echo(teller_id)}", field="teller_id")
            if checks.held_tasks(tx.conn, teller_id) != held:
                continue  # changed between the read and the locks: look again
            if row.on_duty:
                tx.conn.execute(
                    update(tellers)
                    .where(tellers.c.teller_id == teller_id)
                    .values(on_duty=False, away=False, updated_at=tx.now)
                )
                tx.event(
                    "off_duty",
                    branch=row.branch_id,
                    teller_id=teller_id,
                    detail=f"teller {teller_id} off duty (by {actor})",
                )
            for task in locked:
                assert task is not None
                offers.close_offer(tx, task, "withdrawn", "teller went off duty")
                event = tx.event(
                    "withdrawn",
                    branch=task.target_branch,
                    task=task,
                    teller_id=teller_id,
                    detail=f"offer to teller {teller_id} withdrawn: off duty",
                )
                offers.release(core, tx, teller_id, pull=False)
                offers.set_event_state(tx, event, offers.route(core, tx, task, OFFERED))
            teller = store.load_teller(tx.conn, teller_id)
        assert teller is not None
        return teller
    raise FailedPrecondition(
        f"on_duty: teller {teller_id}'s tasks keep changing; try again", field="on_duty"
    )


@store.retrying
def manager_duty(core: Core, actor: Actor, on_duty: bool) -> LobbyManager:
    with core.tx() as tx:
        row = tx.conn.execute(
            select(lobby_managers).where(lobby_managers.c.manager_id == actor.id).with_for_update()
        ).first()
        if row is None:
            raise PermissionDenied(f"{actor} has no staff record", rule="staff_record_required")
        if bool(row.on_duty) != on_duty:
            tx.conn.execute(
                update(lobby_managers)
                .where(lobby_managers.c.manager_id == actor.id)
                .values(on_duty=on_duty, updated_at=tx.now)
            )
            tx.event(
                "lobby_on_duty" if on_duty else "lobby_off_duty",
                branch=row.branch_id,
                detail=f"lobby manager {actor.id} {'on' if on_duty else 'off'} duty",
            )
            if on_duty:
                # Tasks that queued for lack of a lobby manager now have one.
                moving = checks.branch_tasks(tx.conn, row.branch_id, QUEUED)
                target: str | None = actor.id
            else:
                moving = [
                    t
                    for t in checks.branch_tasks(tx.conn, row.branch_id, AT_LOBBY)
                    if t.lobby_manager_id == actor.id
                ]
                chosen = routing.choose_manager(offers.manager_candidates(tx.conn, row.branch_id))
                target = chosen.manager_id if chosen is not None else None
            for task in moving:
                if target is None:
                    offers.to_queue(tx, task, task.state, "the lobby manager went off duty")
                else:
                    offers.to_lobby(tx, task, task.state, target, f"lobby manager {target}")
        manager = store.load_manager(tx.conn, actor.id)
    assert manager is not None
    return manager
