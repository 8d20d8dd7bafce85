"""Branches and the staff records of their tellers and lobby managers (operators), and the
roster a lobby manager reads."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, update

from branchline.common.errors import FailedPrecondition, InvalidArgument, PermissionDenied, echo
from branchline.server.dispatch import store
from branchline.server.dispatch import validate as check
from branchline.server.dispatch.model import (
    LOBBY,
    STRATEGIES,
    TELLER,
    Actor,
    Branch,
    LobbyManager,
    Teller,
)
from branchline.server.dispatch.schema import branches, lobby_managers, teller_skills, tellers
from branchline.server.dispatch.tasks import checks
from branchline.server.dispatch.tasks.core import OPERATOR, Core


@store.retrying
def add_branch(
    core: Core, branch_id: str, name: str, routing_strategy: str | None = None
) -> Branch:
    """Create a branch, or update its name and routing strategy."""
    check.ident("branch_id", branch_id)
    check.text("name", name, 200, required=True)
    if routing_strategy and routing_strategy not in STRATEGIES:
        raise InvalidArgument(
            "routing_strategy", f"{echo(routing_strategy)} is not one of {', '.join(STRATEGIES)}"
        )
    with core.tx() as tx:
        values = {"name": name, "routing_strategy": routing_strategy or None}
        done = tx.conn.execute(
            update(branches).where(branches.c.branch_id == branch_id).values(values)
        )
        if done.rowcount == 0:
            tx.conn.execute(
                branches.insert().values(branch_id=branch_id, created_at=tx.now, **values)
            )
        branch = store.load_branch(tx.conn, branch_id)
    assert branch is not None
    return branch


def list_branches(core: Core) -> list[Branch]:
    with core.engine.connect() as conn:
        rows = conn.execute(select(branches).order_by(branches.c.branch_id))
        return [store.branch_from_row(row) for row in rows]


@store.retrying
def add_teller(
    core: Core, teller_id: str, name: str, branch_id: str, skills: Sequence[str]
) -> Teller:
    """Create a teller (off duty), or update name, home branch and skills."""
    check.ident("teller_id", teller_id)
    check.text("name", name, 200, required=True)
    check.ident("branch_id", branch_id)
    wanted = check.skills("skills", skills)
    with core.tx() as tx:
        checks.require_branch(tx.conn, branch_id, "branch_id")
        row = store.lock_teller(tx.conn, teller_id)
        if row is None:
            tx.conn.execute(
                tellers.insert().values(
                    teller_id=teller_id,
                    name=name,
                    branch_id=branch_id,
                    on_duty=False,
                    away=False,
                    load=0,
                    idle_since=tx.now,
                    handled=0,
                    updated_at=tx.now,
                )
            )
        else:
            if row.branch_id != branch_id and row.load > 0:
                raise FailedPrecondition(
                    f"branch_id: teller {teller_id} holds tasks in branch {row.branch_id}; "
                    "they finish or reassign them before moving branch",
                    field="branch_id",
                )
            tx.conn.execute(
                update(tellers)
                .where(tellers.c.teller_id == teller_id)
                .values(name=name, branch_id=branch_id, updated_at=tx.now)
            )
            tx.conn.execute(teller_skills.delete().where(teller_skills.c.teller_id == teller_id))
        if wanted:
            tx.conn.execute(
                teller_skills.insert(), [{"teller_id": teller_id, "skill": s} for s in wanted]
            )
        teller = store.load_teller(tx.conn, teller_id)
    assert teller is not None
    return teller


@store.retrying
def add_lobby_manager(core: Core, manager_id: str, name: str, branch_id: str) -> LobbyManager:
    """Create a lobby manager (off duty), or update name and branch."""
    check.ident("manager_id", manager_id)
    check.text("name", name, 200, required=True)
    check.ident("branch_id", branch_id)
    with core.tx() as tx:
        checks.require_branch(tx.conn, branch_id, "branch_id")
        done = tx.conn.execute(
            update(lobby_managers)
            .where(lobby_managers.c.manager_id == manager_id)
            .values(name=name, branch_id=branch_id, updated_at=tx.now)
        )
        if done.rowcount == 0:
            tx.conn.execute(
                lobby_managers.insert().values(
                    manager_id=manager_id,
                    name=name,
                    branch_id=branch_id,
                    on_duty=False,
                    updated_at=tx.now,
                )
            )
        manager = store.load_manager(tx.conn, manager_id)
    assert manager is not None
    return manager


def roster(
    core: Core, actor: Actor, branch_id: str | None = None
) -> tuple[list[Teller], list[LobbyManager]]:
    """The tellers and lobby managers of a branch: a lobby manager's own, or any for
    operators (all branches when ``branch_id`` is empty)."""
    if actor.role == LOBBY:
        manager = staff(core, actor)
        assert isinstance(manager, LobbyManager)
        if branch_id and branch_id != manager.branch_id:
            raise PermissionDenied(
                f"a lobby manager acts only within their branch: {actor} is of branch "
                f"{manager.branch_id}, not {branch_id}",
                rule="own_branch_only",
            )
        branch_id = manager.branch_id
    elif actor.role != OPERATOR:
        raise PermissionDenied(
            f"the roster is for lobby managers and operators; not {actor}", rule="role"
        )
    with core.engine.connect() as conn:
        return store.load_tellers(conn, branch_id), store.load_managers(conn, branch_id)


def staff(core: Core, actor: Actor) -> Teller | LobbyManager:
    """The staff record of a teller or lobby manager; PermissionDenied without one."""
    with core.engine.connect() as conn:
        record: Teller | LobbyManager | None = None
        if actor.role == TELLER:
            record = store.load_teller(conn, actor.id)
        elif actor.role == LOBBY:
            record = store.load_manager(conn, actor.id)
    if record is None:
        raise PermissionDenied(
            f"{actor} has no staff record: an operator adds it "
            f"(branchline-teller admin add-{'teller' if actor.role == TELLER else 'lobby-manager'})",
            rule="staff_record_required",
        )
    return record
