"""The dispatch core's operations: each one transaction over the database.

Callers pass the acting principal (``Actor``); the rules of who may do what to which task
are enforced here, so the gRPC layer, the CLI and the tests share them. A refused
operation raises a ``DispatchError`` whose message names the field or the rule.

Safe with several server replicas on one PostgreSQL database: every check-then-change
holds row locks (see ``store``), and the changes that decide who holds a task are
conditional UPDATEs, so no in-process lock is relied on.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
import secrets
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    CompoundSelect,
    Connection,
    Engine,
    Executable,
    Integer,
    Row,
    Select,
    and_,
    bindparam,
    case,
    exists,
    false,
    func,
    literal,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError

from branchline.server.dispatch import routing, store
from branchline.server.dispatch import validate as check
from branchline.server.dispatch.model import (
    ACCEPT,
    ACCEPTED,
    ANSWERS,
    AT_LOBBY,
    CANCELLED,
    DONE,
    FAILURE,
    HELD_STATES,
    LOBBY,
    LONGEST_IDLE,
    OFFERED,
    OPEN_STATES,
    QUEUED,
    RANDOM,
    REJECT,
    STRATEGIES,
    SUCCESS,
    TASK_STATES,
    TELLER,
    UNASSIGNED_STATES,
    WAIT,
    WAITING,
    Actor,
    AlreadyExists,
    Branch,
    DispatchEvent,
    FailedPrecondition,
    InvalidArgument,
    LobbyManager,
    Material,
    NotFound,
    PermissionDenied,
    Task,
    Teller,
)
from branchline.server.dispatch.schema import (
    branches,
    dispatch_events,
    lobby_managers,
    material_blobs,
    task_materials,
    task_offers,
    tasks,
    teller_skills,
    tellers,
)

OPERATOR = "operator"
TERMINAL = "terminal"
DEFAULT_OFFER_TIMEOUT = 60.0
DEFAULT_MAX_MATERIAL_BYTES = 4 * 1024 * 1024
# How many free tellers (queued tasks) one routing decision looks at: the first of them
# in strategy order wins unless another replica holds its row.
CANDIDATES = 8
RANDOM_CANDIDATES = 64
EXPIRE_BATCH = 100
LIST_LIMIT = 500
OFF_DUTY_RETRIES = 5

# -- statements of the routing paths, built once (see store) -------------------------------

_REJECTED_OR_EXPIRED = ("rejected", "expired")


def _now() -> BindParameter[datetime]:
    return bindparam("b_now", type_=tellers.c.updated_at.type)


_READ_TASK = select(tasks).where(tasks.c.task_id == bindparam("b_task_id"))
_TASK_BY_REQUEST = select(tasks).where(
    tasks.c.origin_terminal == bindparam("b_origin_terminal"),
    tasks.c.request_id == bindparam("b_request_id"),
)
# A new task, in one statement: inserted only if its target branch exists (selected from
# branches) and its origin has not used the request_id yet (the unique key absorbs the
# conflict); the row comes back with the branch's routing strategy. No row: either case,
# which the caller then tells apart.
_NEW_TASK_COLUMNS = [
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
_NEW_TASK_ROW = select(
    *(
        branches.c.branch_id
        if name == "target_branch"
        else bindparam(f"b_{name}", type_=tasks.c[name].type)
        for name in _NEW_TASK_COLUMNS
    )
).where(branches.c.branch_id == bindparam("b_target_branch"))
_BRANCH_STRATEGY = (
    select(branches.c.routing_strategy)
    .where(branches.c.branch_id == bindparam("b_target_branch"))
    .scalar_subquery()
    .label("branch_strategy")
)
_PG_INSERT_NEW_TASK = (
    postgresql.insert(tasks)
    .from_select(_NEW_TASK_COLUMNS, _NEW_TASK_ROW)
    .on_conflict_do_nothing(index_elements=[tasks.c.origin_terminal, tasks.c.request_id])
    .returning(*tasks.c, _BRANCH_STRATEGY)
)
_SQLITE_INSERT_NEW_TASK = (
    sqlite.insert(tasks)
    .from_select(_NEW_TASK_COLUMNS, _NEW_TASK_ROW)
    .on_conflict_do_nothing(index_elements=[tasks.c.origin_terminal, tasks.c.request_id])
    .returning(*tasks.c, _BRANCH_STRATEGY)
)
# SET from the column-named parameters; the row as written comes back.
_UPDATE_TASK = (
    update(tasks)
    .where(tasks.c.task_id == bindparam("b_task_id"), tasks.c.state == bindparam("b_expect"))
    .returning(*tasks.c)
)
_UPDATE_TELLER = (
    update(tellers).where(tellers.c.teller_id == bindparam("b_teller_id")).returning(*tellers.c)
)
_NOW = _now()
_TAKE = (
    update(tellers)
    .where(tellers.c.teller_id == bindparam("b_teller_id"))
    .values(load=tellers.c.load + 1, updated_at=_NOW)
    .returning(*tellers.c)
)
_TAKE_FREE = _TAKE.where(
    tellers.c.on_duty == true(), tellers.c.away == false(), tellers.c.load == 0
)
_RELEASE = (
    update(tellers)
    .where(tellers.c.teller_id == bindparam("b_teller_id"), tellers.c.load > 0)
    .values(
        load=tellers.c.load - 1,
        handled=tellers.c.handled + bindparam("b_handled", type_=Integer()),
        idle_since=case((tellers.c.load == 1, _NOW), else_=tellers.c.idle_since),
        updated_at=_NOW,
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
_INSERT_OFFER = task_offers.insert().returning(task_offers.c.offer_id)
_CLOSE_OFFER = (
    update(task_offers)
    .where(task_offers.c.offer_id == bindparam("b_offer_id"))
    .values(answer=bindparam("b_answer"), reason=bindparam("b_reason"))
)
_CLOSE_OWN_OFFER = _CLOSE_OFFER.values(answered_at=func.coalesce(task_offers.c.answered_at, _now()))
_MANAGERS_ON_DUTY = select(lobby_managers.c.manager_id).where(
    lobby_managers.c.branch_id == bindparam("b_branch_id"), lobby_managers.c.on_duty == true()
)
_PENDING_AT_LOBBY = (
    select(tasks.c.lobby_manager_id, func.count())
    .where(tasks.c.target_branch == bindparam("b_branch_id"), tasks.c.state == AT_LOBBY)
    .group_by(tasks.c.lobby_manager_id)
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
                task_offers.c.answer.in_(_REJECTED_OR_EXPIRED),
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


_HEAD_COLUMNS = (
    tasks.c.task_id,
    tasks.c.business_type,
    tasks.c.state,
    tasks.c.created_at,
    tasks.c.target_branch,
    tasks.c.origin_terminal,
    tasks.c.offer_id,
)


def _head_of_queue(business_type: ColumnElement[str], state: ColumnElement[str]) -> Select[Any]:
    """The oldest task of one queue (branch, business type, unassigned state) that teller
    ``b_teller_id`` has not rejected nor let expire, locked unless another transaction
    holds it (then the next one)."""
    rejected = exists().where(
        task_offers.c.task_id == tasks.c.task_id,
        task_offers.c.teller_id == bindparam("b_teller_id"),
        task_offers.c.answer.in_(_REJECTED_OR_EXPIRED),
    )
    return (
        select(*_HEAD_COLUMNS)
        .where(
            tasks.c.target_branch == bindparam("b_branch_id"),
            tasks.c.business_type == business_type,
            tasks.c.state == state,
            ~rejected,
        )
        .order_by(tasks.c.created_at, tasks.c.task_id)
        .limit(1)
        .with_for_update(of=tasks, skip_locked=True)
    )


# PostgreSQL: one head per (skill, state) pair by LATERAL over the teller's skills, the
# same statement (and plan) whatever their number.
_PG_SKILLS = (
    func.unnest(bindparam("b_skills", type_=ARRAY(teller_skills.c.skill.type)))
    .table_valued("skill")
    .render_derived(name="teller_skill")
)
_PG_STATES = (
    func.unnest(
        bindparam("b_states", value=list(UNASSIGNED_STATES), type_=ARRAY(tasks.c.state.type))
    )
    .table_valued("state")
    .render_derived(name="unassigned")
)
_PG_HEADS = _head_of_queue(_PG_SKILLS.c.skill, _PG_STATES.c.state).lateral("head")
_PG_QUEUE_HEADS = select(_PG_HEADS).select_from(
    _PG_SKILLS.join(_PG_STATES, true()).join(_PG_HEADS, true())
)


@functools.cache
def _sqlite_queue_heads(skills: int) -> Select[Any] | CompoundSelect[Any]:
    """SQLite (no LATERAL): the heads as a UNION ALL, one branch per (skill, state)."""
    heads = [
        select(_head_of_queue(bindparam(f"b_skill_{i}"), literal(state)).subquery())
        for i in range(skills)
        for state in UNASSIGNED_STATES
    ]
    return union_all(*heads)


def _queue_heads(
    postgres: bool, branch_id: str, skills: Sequence[str], teller_id: str
) -> tuple[Executable, dict[str, Any]]:
    """The statement and parameters reading the head of each queue a teller can serve."""
    params: dict[str, Any] = {"b_branch_id": branch_id, "b_teller_id": teller_id}
    if postgres:
        params["b_skills"] = list(skills)
        return _PG_QUEUE_HEADS, params
    params.update({f"b_skill_{i}": skill for i, skill in enumerate(skills)})
    return _sqlite_queue_heads(len(skills)), params


@dataclass(frozen=True)
class EventScope:
    """Which events a watcher sees: any field left None does not filter."""

    origin_terminal: str | None = None
    teller_id: str | None = None
    branch: str | None = None
    task_id: str | None = None


def _utcnow() -> datetime:
    return datetime.now(UTC)


class DispatchService:
    def __init__(
        self,
        engine: Engine,
        *,
        offer_timeout: float = DEFAULT_OFFER_TIMEOUT,
        strategy: str = LONGEST_IDLE,
        max_material_bytes: int = DEFAULT_MAX_MATERIAL_BYTES,
        clock: Callable[[], datetime] = _utcnow,
        rng: random.Random | None = None,
    ) -> None:
        self.engine = engine
        self.offer_timeout = offer_timeout
        self.strategy = routing.check_strategy(strategy)
        self.max_material_bytes = max_material_bytes
        self._clock = clock
        self._rng = rng or random.Random()
        # Run first when a teller becomes free, with the teller's row (locked) and skills;
        # one returning True gave the teller work (a video call: calls are answered before
        # queued tasks).
        self.pull_hooks: list[Callable[[store.Tx, Row[Any], tuple[str, ...]], bool]] = []
        # Run before a teller goes off duty; each raises to refuse (a call still held).
        self.off_duty_checks: list[Callable[[Connection, str], None]] = []

    def _tx(self) -> AbstractContextManager[store.Tx]:
        return store.transaction(self.engine, self._clock())

    # -- administration (operators) ---------------------------------------------------------

    @store.retrying
    def add_branch(self, branch_id: str, name: str, routing_strategy: str | None = None) -> Branch:
        """Create a branch, or update its name and routing strategy."""
        check.ident("branch_id", branch_id)
        check.text("name", name, 200, required=True)
        if routing_strategy and routing_strategy not in STRATEGIES:
            raise InvalidArgument(
                f"routing_strategy: {routing_strategy!r} is not one of {', '.join(STRATEGIES)}"
            )
        with self._tx() as tx:
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

    def list_branches(self) -> list[Branch]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(branches).order_by(branches.c.branch_id))
            return [store.branch_from_row(row) for row in rows]

    @store.retrying
    def add_teller(
        self, teller_id: str, name: str, branch_id: str, skills: Sequence[str]
    ) -> Teller:
        """Create a teller (off duty), or update name, home branch and skills."""
        check.ident("teller_id", teller_id)
        check.text("name", name, 200, required=True)
        check.ident("branch_id", branch_id)
        wanted = check.skills("skills", skills)
        with self._tx() as tx:
            self._require_branch(tx.conn, branch_id, "branch_id")
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
                        "they finish or reassign them before moving branch"
                    )
                tx.conn.execute(
                    update(tellers)
                    .where(tellers.c.teller_id == teller_id)
                    .values(name=name, branch_id=branch_id, updated_at=tx.now)
                )
                tx.conn.execute(
                    teller_skills.delete().where(teller_skills.c.teller_id == teller_id)
                )
            if wanted:
                tx.conn.execute(
                    teller_skills.insert(), [{"teller_id": teller_id, "skill": s} for s in wanted]
                )
            teller = store.load_teller(tx.conn, teller_id)
        assert teller is not None
        return teller

    @store.retrying
    def add_lobby_manager(self, manager_id: str, name: str, branch_id: str) -> LobbyManager:
        """Create a lobby manager (off duty), or update name and branch."""
        check.ident("manager_id", manager_id)
        check.text("name", name, 200, required=True)
        check.ident("branch_id", branch_id)
        with self._tx() as tx:
            self._require_branch(tx.conn, branch_id, "branch_id")
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
        self, actor: Actor, branch_id: str | None = None
    ) -> tuple[list[Teller], list[LobbyManager]]:
        """The tellers and lobby managers of a branch: a lobby manager's own, or any for
        operators (all branches when ``branch_id`` is empty)."""
        if actor.role == LOBBY:
            manager = self.staff(actor)
            assert isinstance(manager, LobbyManager)
            if branch_id and branch_id != manager.branch_id:
                raise PermissionDenied(
                    f"a lobby manager acts only within their branch: {actor} is of branch "
                    f"{manager.branch_id}, not {branch_id}"
                )
            branch_id = manager.branch_id
        elif actor.role != OPERATOR:
            raise PermissionDenied(f"the roster is for lobby managers and operators; not {actor}")
        with self.engine.connect() as conn:
            return store.load_tellers(conn, branch_id), store.load_managers(conn, branch_id)

    # -- staff: identity, duty, presence ---------------------------------------------------

    def staff(self, actor: Actor) -> Teller | LobbyManager:
        """The staff record of a teller or lobby manager; PermissionDenied without one."""
        with self.engine.connect() as conn:
            record: Teller | LobbyManager | None = None
            if actor.role == TELLER:
                record = store.load_teller(conn, actor.id)
            elif actor.role == LOBBY:
                record = store.load_manager(conn, actor.id)
        if record is None:
            raise PermissionDenied(
                f"{actor} has no staff record: an operator adds it "
                f"(branchline-teller admin add-{'teller' if actor.role == TELLER else 'lobby-manager'})"
            )
        return record

    def set_duty(
        self, actor: Actor, on_duty: bool, teller_id: str | None = None
    ) -> Teller | LobbyManager:
        """Put a teller (yourself; as lobby manager, one of your branch) or yourself on or
        off duty. Going off duty withdraws pending offers and is refused while the teller
        still holds accepted or waiting tasks."""
        if teller_id:
            check.ident("teller_id", teller_id)
        if actor.role == LOBBY and not teller_id:
            return self._manager_duty(actor, on_duty)
        target = teller_id or actor.id
        if actor.role == TELLER and target != actor.id:
            raise PermissionDenied(
                f"a teller sets only their own duty; the branch roster is kept by its lobby "
                f"manager ({actor} asked for teller {target})"
            )
        if actor.role == LOBBY:
            manager = self.staff(actor)
            teller = self._teller_or_404(target, "teller_id")
            if teller.branch_id != manager.branch_id:
                raise PermissionDenied(
                    f"a lobby manager keeps the roster of their own branch only: teller "
                    f"{target} is of branch {teller.branch_id}, {actor} of {manager.branch_id}"
                )
        elif actor.role == TELLER:
            self.staff(actor)
        elif actor.role != OPERATOR:
            raise PermissionDenied(
                f"duty is set by tellers, lobby managers and operators; not {actor}"
            )
        return self._teller_on(target, actor) if on_duty else self._teller_off(target, actor)

    @store.retrying
    def set_presence(self, actor: Actor, away: bool) -> Teller:
        """A teller steps away (no offers) or comes back (and may get a queued task)."""
        if actor.role != TELLER:
            raise PermissionDenied(f"presence is a teller's own; not for {actor}")
        with self._tx() as tx:
            row, skills = store.lock_teller_and_skills(tx.conn, actor.id)
            if row is None:
                raise PermissionDenied(f"{actor} has no staff record")
            if not row.on_duty:
                raise FailedPrecondition(f"away: {actor} is off duty; go on duty first")
            if bool(row.away) != away:
                values: dict[str, Any] = {
                    "b_teller_id": actor.id,
                    "away": away,
                    "updated_at": tx.now,
                }
                if not away and row.load == 0:
                    values["idle_since"] = tx.now
                row = tx.conn.execute(_UPDATE_TELLER, values).one()
                tx.teller_rows[actor.id] = row
                tx.event(
                    "away" if away else "back",
                    branch=row.branch_id,
                    teller_id=actor.id,
                    detail=f"teller {actor.id} {'stepped away' if away else 'is back'}",
                )
                if not away:
                    self._pull_next(tx, actor.id, (row, skills))
                # Only _take writes the teller's row from here: as it left it.
                row = tx.teller_rows[actor.id]
            return store.teller_from_row(row, skills)

    @store.retrying
    def _teller_on(self, teller_id: str, actor: Actor) -> Teller:
        with self._tx() as tx:
            row = store.lock_teller(tx.conn, teller_id)
            if row is None:
                raise NotFound(f"teller_id: no teller {teller_id!r}")
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
                self._pull_next(tx, teller_id)
            teller = store.load_teller(tx.conn, teller_id)
        assert teller is not None
        return teller

    @store.retrying
    def _teller_off(self, teller_id: str, actor: Actor) -> Teller:
        for _attempt in range(OFF_DUTY_RETRIES):
            with self._tx() as tx:
                for off_duty_check in self.off_duty_checks:
                    off_duty_check(tx.conn, teller_id)
                held = self._held_tasks(tx.conn, teller_id)
                busy = [(t, s) for t, s in held if s != OFFERED]
                if busy:
                    listed = ", ".join(f"{t} ({s})" for t, s in busy)
                    raise FailedPrecondition(
                        f"on_duty: teller {teller_id} still holds {listed}; "
                        "finish or reassign first"
                    )
                # Lock order: the offered tasks first, then the teller.
                locked = [store.lock_task(tx.conn, t) for t, _ in sorted(held)]
                row = store.lock_teller(tx.conn, teller_id)
                if row is None:
                    raise NotFound(f"teller_id: no teller {teller_id!r}")
                if self._held_tasks(tx.conn, teller_id) != held:
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
                    self._close_offer(tx, task, "withdrawn", "teller went off duty")
                    event = tx.event(
                        "withdrawn",
                        branch=task.target_branch,
                        task=task,
                        teller_id=teller_id,
                        detail=f"offer to teller {teller_id} withdrawn: off duty",
                    )
                    self._release(tx, teller_id, pull=False)
                    self._set_event_state(tx, event, self._route(tx, task, OFFERED))
                teller = store.load_teller(tx.conn, teller_id)
            assert teller is not None
            return teller
        raise FailedPrecondition(f"on_duty: teller {teller_id}'s tasks keep changing; try again")

    @store.retrying
    def _manager_duty(self, actor: Actor, on_duty: bool) -> LobbyManager:
        with self._tx() as tx:
            row = tx.conn.execute(
                select(lobby_managers)
                .where(lobby_managers.c.manager_id == actor.id)
                .with_for_update()
            ).first()
            if row is None:
                raise PermissionDenied(f"{actor} has no staff record")
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
                    moving = self._branch_tasks(tx.conn, row.branch_id, QUEUED)
                    target: str | None = actor.id
                else:
                    moving = [
                        t
                        for t in self._branch_tasks(tx.conn, row.branch_id, AT_LOBBY)
                        if t.lobby_manager_id == actor.id
                    ]
                    chosen = routing.choose_manager(
                        self._manager_candidates(tx.conn, row.branch_id)
                    )
                    target = chosen.manager_id if chosen is not None else None
                for task in moving:
                    if target is None:
                        self._to_queue(tx, task, task.state, "the lobby manager went off duty")
                    else:
                        self._to_lobby(tx, task, task.state, target, f"lobby manager {target}")
            manager = store.load_manager(tx.conn, actor.id)
        assert manager is not None
        return manager

    # -- origin: mobile counters -----------------------------------------------------------

    @store.retrying
    def send_task(
        self,
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
        check.text("request_id", request_id, 128, required=True)
        check.ident("target_branch", target_branch)
        check.skill("business_type", business_type)
        check.text("title", title, check.MAX_TITLE, required=True)
        values = check.fields_map("fields", fields or {})
        check.text("note", note, check.MAX_NOTE)
        check.text("customer_ref", customer_ref, 128)
        for _attempt in range(2):
            try:
                with self._tx() as tx:
                    task_id = "tk-" + secrets.token_hex(6)
                    # The new row comes back from the INSERT (ours alone until commit);
                    # nothing if the branch is unknown or the origin already used this
                    # request_id: a new request costs no read ahead of its insert.
                    insert = _PG_INSERT_NEW_TASK if tx.postgres else _SQLITE_INSERT_NEW_TASK
                    row = tx.conn.execute(
                        insert,
                        {
                            "b_task_id": task_id,
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
                            "b_created_at": tx.now,
                            "b_updated_at": tx.now,
                        },
                    ).first()
                    if row is None:
                        existing = self._task_by_request(tx.conn, origin.id, request_id)
                        if existing is not None:
                            if (
                                existing.target_branch,
                                existing.business_type,
                                existing.title,
                            ) != (target_branch, business_type, title):
                                raise AlreadyExists(
                                    f"request_id: {request_id!r} was already used for task "
                                    f"{existing.task_id} with other content"
                                )
                            return store.task_from_row(existing)
                        self._require_branch(tx.conn, target_branch, "target_branch")
                        continue  # the conflicting task is gone again: once more
                    tx.task_rows[task_id] = row
                    event = tx.event(
                        "created",
                        branch=target_branch,
                        task=row,
                        detail=f"from terminal {origin.id} of branch {origin_branch}: "
                        f"{business_type}",
                    )
                    # New: nobody has rejected it yet.
                    strategy = row.branch_strategy or self.strategy
                    state = self._route(tx, row, QUEUED, strategy=strategy, new=True)
                    self._set_event_state(tx, event, state)
                    return self._read_task(tx, task_id)
            except IntegrityError:
                continue  # a conflict the insert does not absorb (a task_id drawn twice)
        raise AlreadyExists(f"request_id: {request_id!r} is being used concurrently")

    @store.retrying
    def upload_material(
        self,
        actor: Actor,
        task_id: str,
        name: str,
        content_type: str,
        data: bytes,
        sha256: str = "",
    ) -> Material:
        """Attach a document photo, ID data, ... to a task: stored once per content."""
        check.ident("task_id", task_id)
        check.material_name("name", name)
        content_type = check.content_type("content_type", content_type)
        if not data:
            raise InvalidArgument("data: must not be empty")
        if len(data) > self.max_material_bytes:
            raise InvalidArgument(
                f"data: {len(data)} bytes is more than the {self.max_material_bytes}-byte "
                "limit for one material"
            )
        digest = hashlib.sha256(data).hexdigest()
        if sha256:
            check.sha256_hex("sha256", sha256)
            if sha256 != digest:
                raise InvalidArgument(f"sha256: does not match the data (its SHA-256 is {digest})")
        with self._tx() as tx:
            task = self._task_or_404(tx.conn, task_id, lock=True)
            self._check_origin(actor, task)
            if task.state not in OPEN_STATES:
                raise FailedPrecondition(f"task {task_id} is {task.state}: no more materials")
            existing = tx.conn.execute(
                select(task_materials).where(
                    task_materials.c.task_id == task_id, task_materials.c.name == name
                )
            ).first()
            if existing is not None:
                if existing.sha256 != digest:
                    raise AlreadyExists(
                        f"name: task {task_id} already has a material {name!r} with other content"
                    )
                return store.material_from_row(existing)
            dialect = postgresql if tx.postgres else sqlite
            tx.conn.execute(
                dialect.insert(material_blobs)
                .values(sha256=digest, size=len(data), data=data, created_at=tx.now)
                .on_conflict_do_nothing(index_elements=["sha256"])
            )
            tx.conn.execute(
                task_materials.insert().values(
                    task_id=task_id,
                    name=name,
                    content_type=content_type,
                    sha256=digest,
                    size=len(data),
                    uploaded_at=tx.now,
                )
            )
            tx.event(
                "material_added",
                branch=task.target_branch,
                task=task,
                teller_id=task.teller_id if task.state in HELD_STATES else None,
                detail=f"{name} ({content_type}, {len(data)} bytes, sha256 {digest})",
            )
        return Material(name, content_type, digest, len(data), tx.now)

    @store.retrying
    def cancel_task(self, actor: Actor, task_id: str, reason: str = "") -> Task:
        check.ident("task_id", task_id)
        check.text("reason", reason, check.MAX_REASON)
        with self._tx() as tx:
            task = self._task_or_404(tx.conn, task_id, lock=True)
            self._check_origin(actor, task)
            if task.state not in OPEN_STATES:
                raise FailedPrecondition(
                    f"task {task_id} is {task.state}: it can no longer be cancelled"
                )
            holder = task.teller_id if task.state in HELD_STATES else None
            self._update_task(
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
                self._close_offer(tx, task, "withdrawn", "cancelled by the origin")
                self._release(tx, holder, pull=True)
            return self._read_task(tx, task_id)

    # -- tellers and lobby managers: offers and tasks --------------------------------------

    @store.retrying
    def answer_offer(
        self,
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
            raise InvalidArgument(f"answer: expected one of {', '.join(ANSWERS)}")
        if answer == WAIT:
            check.wait_seconds("estimate_seconds", estimate_seconds)
        check.text("reason", reason, check.MAX_REASON)
        if actor.role != TELLER:
            raise PermissionDenied(f"offers are answered by the teller they went to; not {actor}")
        with self._tx() as tx:
            task = self._task_or_404(tx.conn, task_id, lock=True)
            self._check_holder(tx.conn, actor, task)
            if offer_id is not None and offer_id != task.offer_id:
                raise FailedPrecondition(
                    f"offer_id: offer {offer_id} of task {task_id} is no longer open "
                    f"(the current offer is {task.offer_id})"
                )
            if task.state not in (OFFERED, WAITING):
                raise FailedPrecondition(
                    f"answer: task {task_id} is already {task.state}; an accepted task is "
                    "reassigned or given a result, not answered again"
                )
            if task.state == OFFERED and task.offer_expires_at <= tx.now:
                # Past its time even if the sweep has not moved it on yet.
                raise FailedPrecondition(
                    f"offer_id: the offer of task {task_id} expired at "
                    f"{task.offer_expires_at.isoformat(timespec='seconds')}"
                )
            if answer == ACCEPT:
                self._close_offer(tx, task, "accepted", reason)
                self._update_task(tx, task, state=ACCEPTED, offer_expires_at=None)
                tx.event(
                    "accepted",
                    branch=task.target_branch,
                    task=task,
                    state=ACCEPTED,
                    teller_id=actor.id,
                    detail=f"accepted by teller {actor.id}",
                )
            elif answer == WAIT:
                self._close_offer(tx, task, "waiting", reason)
                self._update_task(
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
                self._close_offer(tx, task, "rejected", reason)
                event = tx.event(
                    "rejected",
                    branch=task.target_branch,
                    task=task,
                    teller_id=actor.id,
                    detail=f"rejected by teller {actor.id}" + (f": {reason}" if reason else ""),
                )
                self._release(tx, actor.id, pull=False)
                self._set_event_state(tx, event, self._route(tx, task, task.state))
                self._pull_next(tx, actor.id)
            return self._read_task(tx, task_id)

    @store.retrying
    def reassign(
        self,
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
        with self._tx() as tx:
            task = self._task_or_404(tx.conn, task_id, lock=True)
            if actor.role == TELLER:
                self._check_holder(tx.conn, actor, task)
            elif actor.role == LOBBY:
                self._check_lobby(tx.conn, actor, task)
            elif actor.role != OPERATOR:
                raise PermissionDenied(
                    f"tasks are reassigned by their teller or a lobby manager; not {actor}"
                )
            if task.state not in OPEN_STATES:
                raise FailedPrecondition(f"task {task_id} is {task.state}: it can no longer move")
            holder = task.teller_id if task.state in HELD_STATES else None
            if holder == to_teller_id:
                raise FailedPrecondition(
                    f"to_teller_id: teller {to_teller_id} already holds task {task_id}"
                )
            rows = store.lock_tellers(tx.conn, [to_teller_id, *([holder] if holder else [])])
            target = rows.get(to_teller_id)
            if target is None:
                raise NotFound(f"to_teller_id: no teller {to_teller_id!r}")
            if target.branch_id != task.target_branch:
                raise PermissionDenied(
                    f"a task stays in its target branch: teller {to_teller_id} is of branch "
                    f"{target.branch_id}, task {task_id} is for branch {task.target_branch}"
                )
            if not target.on_duty or target.away:
                raise FailedPrecondition(
                    f"to_teller_id: teller {to_teller_id} is "
                    f"{'off duty' if not target.on_duty else 'away'}"
                )
            skills = store.skills_of(tx.conn, [to_teller_id])[to_teller_id]
            if task.business_type not in skills:
                raise FailedPrecondition(
                    f"to_teller_id: teller {to_teller_id} lacks skill {task.business_type!r} "
                    f"that task {task_id} needs"
                )
            by = f" by {actor}" + (f": {reason}" if reason else "")
            if holder is not None:
                self._close_offer(tx, task, "withdrawn", f"{via} to {to_teller_id}{by}")
                tx.event(
                    "reassigned",
                    branch=task.target_branch,
                    task=task,
                    state=OFFERED,
                    teller_id=holder,
                    detail=f"from teller {holder} to teller {to_teller_id}{by}",
                )
                self._release(tx, holder, pull=False)
            else:
                tx.event(
                    "designated",
                    branch=task.target_branch,
                    task=task,
                    state=OFFERED,
                    detail=f"teller {to_teller_id} designated{by}",
                )
            self._offer(tx, task, task.state, to_teller_id, via, str(actor), reason, free=False)
            if holder is not None:
                self._pull_next(tx, holder)
            return self._read_task(tx, task_id)

    def designate(self, actor: Actor, task_id: str, teller_id: str, reason: str = "") -> Task:
        if actor.role not in (LOBBY, OPERATOR):
            raise PermissionDenied(f"designating a teller is for lobby managers; not {actor}")
        return self.reassign(actor, task_id, teller_id, reason, via="designated")

    @store.retrying
    def complete(self, actor: Actor, task_id: str, success: bool, reason: str = "") -> Task:
        """The teller's reviewed result, sent back to the origin."""
        check.ident("task_id", task_id)
        check.text("reason", reason, check.MAX_REASON)
        if not success and not reason.strip():
            raise InvalidArgument("reason: required when the result is a failure")
        if actor.role != TELLER:
            raise PermissionDenied(f"results come from the teller holding the task; not {actor}")
        with self._tx() as tx:
            task = self._task_or_404(tx.conn, task_id, lock=True)
            self._check_holder(tx.conn, actor, task)
            if task.state != ACCEPTED:
                raise FailedPrecondition(
                    f"task {task_id} is {task.state}: accept it before returning a result"
                )
            outcome = SUCCESS if success else FAILURE
            self._update_task(
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
            self._release(tx, actor.id, handled=True, pull=True)
            return self._read_task(tx, task_id)

    # -- reads -----------------------------------------------------------------------------

    def get_task(self, actor: Actor, task_id: str) -> Task:
        """A task with its materials, offers and event history, if ``actor`` may see it."""
        check.ident("task_id", task_id)
        with self.engine.connect() as conn:
            task = self._task_or_404(conn, task_id)
            self._check_read(conn, actor, task)
            materials = [
                store.material_from_row(row)
                for row in conn.execute(
                    select(task_materials)
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

    def get_material(self, actor: Actor, task_id: str, sha256: str) -> tuple[Material, bytes]:
        check.ident("task_id", task_id)
        check.sha256_hex("sha256", sha256)
        with self.engine.connect() as conn:
            task = self._task_or_404(conn, task_id)
            self._check_read(conn, actor, task)
            row = conn.execute(
                select(task_materials, material_blobs.c.data)
                .join(material_blobs, material_blobs.c.sha256 == task_materials.c.sha256)
                .where(task_materials.c.task_id == task_id, task_materials.c.sha256 == sha256)
                .order_by(task_materials.c.name)
                .limit(1)
            ).first()
        if row is None:
            raise NotFound(f"sha256: task {task_id} has no material {sha256}")
        return store.material_from_row(row), bytes(row.data)

    def list_tasks(
        self,
        actor: Actor,
        states: Sequence[str] = (),
        branch: str | None = None,
        limit: int = LIST_LIMIT,
    ) -> list[Task]:
        """Tasks the actor may see, newest first: an origin's own, a teller's held (and
        finished) ones, a lobby manager's branch, any for operators."""
        for i, state in enumerate(states):
            if state not in TASK_STATES:
                raise InvalidArgument(f"states[{i}]: unknown task state {state!r}")
        query = select(tasks).order_by(tasks.c.created_at.desc(), tasks.c.task_id).limit(limit)
        if actor.role == TERMINAL:
            query = query.where(tasks.c.origin_terminal == actor.id)
        elif actor.role == TELLER:
            query = query.where(tasks.c.teller_id == actor.id)
        elif actor.role == LOBBY:
            manager = self.staff(actor)
            assert isinstance(manager, LobbyManager)
            if branch and branch != manager.branch_id:
                raise PermissionDenied(
                    f"a lobby manager acts only within their branch: {actor} is of branch "
                    f"{manager.branch_id}, not {branch}"
                )
            branch = manager.branch_id
        elif actor.role != OPERATOR:
            raise PermissionDenied(f"no task list for {actor}")
        if branch:
            query = query.where(tasks.c.target_branch == branch)
        if states:
            query = query.where(tasks.c.state.in_(list(states)))
        with self.engine.connect() as conn:
            return [store.task_from_row(row) for row in conn.execute(query)]

    def open_tasks(self, scope: EventScope) -> list[Task]:
        """What a watcher starts from: the open tasks in its scope, oldest first."""
        query = select(tasks).order_by(tasks.c.created_at, tasks.c.task_id)
        if scope.teller_id is not None:
            query = query.where(
                tasks.c.teller_id == scope.teller_id, tasks.c.state.in_(HELD_STATES)
            )
        else:
            query = query.where(tasks.c.state.in_(OPEN_STATES))
        if scope.origin_terminal is not None:
            query = query.where(tasks.c.origin_terminal == scope.origin_terminal)
        if scope.branch is not None:
            query = query.where(tasks.c.target_branch == scope.branch)
        if scope.task_id is not None:
            query = query.where(tasks.c.task_id == scope.task_id)
        with self.engine.connect() as conn:
            return [store.task_from_row(row) for row in conn.execute(query.limit(LIST_LIMIT))]

    def read_task(self, task_id: str) -> Task | None:
        """A task without access checks (for a watcher that already passed them)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(tasks).where(tasks.c.task_id == task_id)).first()
            return store.task_from_row(row) if row is not None else None

    def events_after(
        self, scope: EventScope, after_id: int, limit: int = LIST_LIMIT
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
        with self.engine.connect() as conn:
            return [store.event_from_row(row) for row in conn.execute(query)]

    def latest_event_id(self) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(select(func.coalesce(func.max(dispatch_events.c.id), 0))).scalar_one()
            )

    # -- the sweep -------------------------------------------------------------------------

    @store.retrying
    def expire_offers(self, limit: int = EXPIRE_BATCH) -> list[str]:
        """Offers past their time move on; the teller who missed one is marked away.

        Safe on every replica at once: each expired offer is handled by exactly one.
        """
        with self._tx() as tx:
            due = tx.conn.execute(
                select(tasks)
                .where(tasks.c.state == OFFERED, tasks.c.offer_expires_at <= tx.now)
                .order_by(tasks.c.offer_expires_at, tasks.c.task_id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            for task in due:
                teller_id = task.teller_id
                self._close_offer(tx, task, "expired", "no answer in time")
                event = tx.event(
                    "expired",
                    branch=task.target_branch,
                    task=task,
                    teller_id=teller_id,
                    detail=f"teller {teller_id} did not answer within {self.offer_timeout:g} s",
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
                self._release(tx, teller_id, pull=False)
                self._set_event_state(tx, event, self._route(tx, task, OFFERED))
            return [task.task_id for task in due]

    @store.retrying
    def match_free_tellers(self, limit: int = 50) -> int:
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
        with self._tx() as tx:
            for (teller_id,) in tx.conn.execute(query).all():
                self._pull_next(tx, teller_id)
                row = tx.conn.execute(
                    select(tellers.c.load).where(tellers.c.teller_id == teller_id)
                ).first()
                offered += 1 if row is not None and row.load > 0 else 0
        return offered

    # -- routing and holding, inside a transaction -----------------------------------------

    def _route(
        self,
        tx: store.Tx,
        task: Row[Any],
        from_state: str,
        *,
        strategy: str | None = None,
        new: bool = False,
    ) -> str:
        """Offer ``task`` to a free teller, else to the lobby, else queue it; the new state.

        ``strategy``: the branch's, when the caller has just read it; ``new`` for a task
        nobody has been offered yet (so nobody can have rejected it).
        """
        if strategy is None:
            branch = store.load_branch(tx.conn, task.target_branch)
            strategy = (branch.routing_strategy if branch else None) or self.strategy
        candidates = self._free_tellers(
            tx.conn,
            task.target_branch,
            task.business_type,
            strategy,
            # Tellers who rejected the task or let its offer expire: left out by the query.
            None if new else task.task_id,
        )
        while True:
            chosen = routing.choose_teller(candidates, task.business_type, strategy, rng=self._rng)
            if chosen is None:
                break
            if self._offer(tx, task, from_state, chosen.teller_id, "routing", "", "", free=True):
                return OFFERED
            # Taken by another transaction since we read it: the next one.
            candidates = [c for c in candidates if c.teller_id != chosen.teller_id]
        managers = self._manager_candidates(tx.conn, task.target_branch)
        decision = routing.route(task.business_type, [], managers, strategy)
        if decision.action == routing.LOBBY:
            assert decision.manager_id is not None
            self._to_lobby(tx, task, from_state, decision.manager_id, decision.reason)
            return AT_LOBBY
        self._to_queue(tx, task, from_state, decision.reason)
        return QUEUED

    def _free_tellers(
        self,
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
        # No lock here: _take's conditional UPDATE decides, waiting for a concurrent offer
        # to the same teller to commit and then moving on to the next candidate.
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

    def _manager_candidates(
        self, conn: Connection, branch_id: str
    ) -> list[routing.ManagerCandidate]:
        ids = [
            row.manager_id for row in conn.execute(_MANAGERS_ON_DUTY, {"b_branch_id": branch_id})
        ]
        if len(ids) < 2:
            return [routing.ManagerCandidate(m, 0) for m in ids]
        pending: dict[str, int] = {
            row[0]: int(row[1])
            for row in conn.execute(_PENDING_AT_LOBBY, {"b_branch_id": branch_id})
        }
        return [routing.ManagerCandidate(m, int(pending.get(m, 0))) for m in ids]

    def _offer(
        self,
        tx: store.Tx,
        task: Row[Any],
        from_state: str,
        teller_id: str,
        via: str,
        by: str,
        reason: str,
        *,
        free: bool,
    ) -> bool:
        """Offer the task to one teller; False if ``free`` is asked and the teller is not."""
        if not self._take(tx, teller_id, free=free):
            return False
        expires = tx.now + timedelta(seconds=self.offer_timeout)
        offer_id = tx.conn.execute(
            _INSERT_OFFER,
            {
                "task_id": task.task_id,
                "teller_id": teller_id,
                "via": via,
                "offered_by": by,
                "offered_at": tx.now,
                "expires_at": expires,
                "reason": reason,
            },
        ).scalar_one()
        self._update_task(
            tx,
            task,
            expect=from_state,
            state=OFFERED,
            teller_id=teller_id,
            offer_id=offer_id,
            offer_expires_at=expires,
            lobby_manager_id=None,
            wait_estimate_seconds=None,
        )
        tx.event(
            "offered",
            branch=task.target_branch,
            task=task,
            state=OFFERED,
            teller_id=teller_id,
            detail=f"offered to teller {teller_id} ({via}"
            + (f" by {by}" if by else "")
            + f"), answer by {expires.isoformat(timespec='seconds')}",
        )
        return True

    def _to_lobby(
        self, tx: store.Tx, task: Row[Any], from_state: str, manager_id: str, reason: str
    ) -> None:
        self._update_task(
            tx,
            task,
            expect=from_state,
            state=AT_LOBBY,
            teller_id=None,
            offer_id=None,
            offer_expires_at=None,
            lobby_manager_id=manager_id,
            wait_estimate_seconds=None,
        )
        tx.event(
            "at_lobby",
            branch=task.target_branch,
            task=task,
            state=AT_LOBBY,
            detail=f"lobby manager {manager_id} to designate a teller ({reason})",
        )

    def _to_queue(self, tx: store.Tx, task: Row[Any], from_state: str, reason: str) -> None:
        self._update_task(
            tx,
            task,
            expect=from_state,
            state=QUEUED,
            teller_id=None,
            offer_id=None,
            offer_expires_at=None,
            lobby_manager_id=None,
            wait_estimate_seconds=None,
        )
        tx.event("queued", branch=task.target_branch, task=task, state=QUEUED, detail=reason)

    def _take(self, tx: store.Tx, teller_id: str, *, free: bool) -> bool:
        """One more task for the teller; with ``free`` only if on duty, present and idle.

        The condition is in the UPDATE itself, so it holds against every concurrent
        writer on every replica, whatever was read before.
        """
        statement = _TAKE_FREE if free else _TAKE
        row = tx.conn.execute(statement, {"b_teller_id": teller_id, "b_now": tx.now}).first()
        if row is None:
            return False
        tx.teller_rows[teller_id] = row
        return True

    def _release(self, tx: store.Tx, teller_id: str, *, handled: bool = False, pull: bool) -> None:
        """One task less; a teller left with none is idle from now (and may take the next)."""
        row = tx.conn.execute(
            _RELEASE,
            {"b_teller_id": teller_id, "b_handled": 1 if handled else 0, "b_now": tx.now},
        ).first()
        if row is not None:
            tx.teller_rows[teller_id] = row
        if pull:
            known = None if row is None else (row, tuple(sorted((row.skills or "").split())))
            self._pull_next(tx, teller_id, known)

    def _pull_next(
        self,
        tx: store.Tx,
        teller_id: str,
        teller: tuple[Row[Any], tuple[str, ...]] | None = None,
    ) -> None:
        """A teller just became free: offer them the oldest queued task they can take.

        ``teller``: their row as this transaction just wrote it (so locked) and their
        skills, when the caller has them; else both are read here, the row locked.
        """
        row, skills = teller or store.lock_teller_and_skills(tx.conn, teller_id)
        if row is None or not row.on_duty or row.away or row.load != 0:
            return
        for hook in self.pull_hooks:
            if hook(tx, row, skills):
                return
        if not skills:
            return
        # The head of each queue (skill x unassigned state) in one query, skipping tasks
        # another transaction is moving; each head stays locked until the commit.
        heads = tx.conn.execute(*_queue_heads(tx.postgres, row.branch_id, skills, teller_id))
        rows: dict[str, Row[Any]] = {}
        queue: list[routing.QueuedTask] = []
        for task in heads:
            rows[task.task_id] = task
            queue.append(routing.QueuedTask(task.task_id, task.business_type, task.created_at))
        me = routing.TellerCandidate(
            teller_id, frozenset(skills), True, False, 0, row.idle_since, int(row.handled)
        )
        choice = routing.choose_task(queue, me)
        if choice is not None:
            task = rows[choice.task_id]
            self._offer(tx, task, task.state, teller_id, "routing", "", "", free=True)

    def _close_offer(self, tx: store.Tx, task: Row[Any], answer: str, reason: str) -> None:
        if task.offer_id is None:
            return
        # The teller's own answer: keep the time of the first one.
        own = answer in ("accepted", "waiting", "rejected", "expired")
        tx.conn.execute(
            _CLOSE_OWN_OFFER if own else _CLOSE_OFFER,
            {"b_offer_id": task.offer_id, "b_answer": answer, "b_reason": reason, "b_now": tx.now},
        )

    def _update_task(
        self, tx: store.Tx, task: Row[Any], *, expect: str | None = None, **values: Any
    ) -> None:
        """Change a task only if it is still in the state it was read in."""
        row = tx.conn.execute(
            _UPDATE_TASK,
            {
                "b_task_id": task.task_id,
                "b_expect": expect or task.state,
                "updated_at": tx.now,
                **values,
            },
        ).first()
        if row is None:
            raise FailedPrecondition(f"task {task.task_id} changed meanwhile; try again")
        tx.task_rows[task.task_id] = row

    @staticmethod
    def _set_event_state(tx: store.Tx, event: dict[str, Any], state: str) -> None:
        event["state"] = state

    # -- checks ----------------------------------------------------------------------------

    def _check_holder(self, conn: Connection, actor: Actor, task: Row[Any]) -> None:
        """A teller acts only on their own offers and tasks."""
        if actor.role != TELLER:
            raise PermissionDenied(f"only the teller holding task {task.task_id} may do this")
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
                f"longer teller {actor.id}'s (offer {last.offer_id} {last.answer}){where}"
            )
        raise PermissionDenied(
            f"a teller acts only on their own offers and tasks: task {task.task_id} was "
            f"never offered to teller {actor.id}"
        )

    def _check_lobby(self, conn: Connection, actor: Actor, task: Row[Any]) -> None:
        manager = store.load_manager(conn, actor.id)
        if manager is None:
            raise PermissionDenied(f"{actor} has no staff record")
        if manager.branch_id != task.target_branch:
            raise PermissionDenied(
                f"a lobby manager acts only within their branch: task {task.task_id} is for "
                f"branch {task.target_branch}, {actor} is of branch {manager.branch_id}"
            )

    @staticmethod
    def _check_origin(actor: Actor, task: Row[Any]) -> None:
        if actor.role != TERMINAL or task.origin_terminal != actor.id:
            raise PermissionDenied(
                f"a terminal acts only on the tasks it sent: task {task.task_id} was sent by "
                f"terminal {task.origin_terminal}, not by {actor}"
            )

    def _check_read(self, conn: Connection, actor: Actor, task: Row[Any]) -> None:
        if actor.role == OPERATOR:
            return
        if actor.role == TERMINAL:
            self._check_origin(actor, task)
        elif actor.role == TELLER:
            if task.teller_id != actor.id:
                self._check_holder(conn, actor, task)
        elif actor.role == LOBBY:
            self._check_lobby(conn, actor, task)
        else:
            raise PermissionDenied(f"{actor} may not read tasks")

    # -- small reads -----------------------------------------------------------------------

    @staticmethod
    def _require_branch(conn: Connection, branch_id: str, field: str) -> Branch:
        branch = store.load_branch(conn, branch_id)
        if branch is None:
            raise NotFound(f"{field}: no branch {branch_id!r}")
        return branch

    def _teller_or_404(self, teller_id: str, field: str) -> Teller:
        with self.engine.connect() as conn:
            teller = store.load_teller(conn, teller_id)
        if teller is None:
            raise NotFound(f"{field}: no teller {teller_id!r}")
        return teller

    @staticmethod
    def _task_or_404(conn: Connection, task_id: str, *, lock: bool = False) -> Row[Any]:
        row = (
            store.lock_task(conn, task_id)
            if lock
            else conn.execute(_READ_TASK, {"b_task_id": task_id}).first()
        )
        if row is None:
            raise NotFound(f"task_id: no task {task_id!r}")
        return row

    @staticmethod
    def _read_task(tx: store.Tx, task_id: str) -> Task:
        """The task as this transaction left it (as it last wrote it, or read afresh)."""
        row = tx.task_rows.get(task_id)
        if row is None:
            row = tx.conn.execute(_READ_TASK, {"b_task_id": task_id}).first()
        assert row is not None
        return store.task_from_row(row)

    @staticmethod
    def _task_by_request(conn: Connection, origin: str, request_id: str) -> Row[Any] | None:
        return conn.execute(
            _TASK_BY_REQUEST, {"b_origin_terminal": origin, "b_request_id": request_id}
        ).first()

    @staticmethod
    def _held_tasks(conn: Connection, teller_id: str) -> list[tuple[str, str]]:
        rows = conn.execute(
            select(tasks.c.task_id, tasks.c.state)
            .where(tasks.c.teller_id == teller_id, tasks.c.state.in_(HELD_STATES))
            .order_by(tasks.c.task_id)
        )
        return [(row.task_id, row.state) for row in rows]

    @staticmethod
    def _branch_tasks(conn: Connection, branch_id: str, state: str) -> list[Row[Any]]:
        return list(
            conn.execute(
                select(tasks)
                .where(tasks.c.target_branch == branch_id, tasks.c.state == state)
                .order_by(tasks.c.created_at, tasks.c.task_id)
                .with_for_update()
            )
        )


__all__ = [
    "ACCEPT",
    "CANCELLED",
    "DONE",
    "EventScope",
    "DispatchService",
    "REJECT",
    "WAIT",
]
