"""A call from request to end: the terminal queues (or leaves), the teller's queue, answering
and ending; the teller freed for the next."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.exc import IntegrityError

from branchline.common.errors import FailedPrecondition, InvalidArgument, NotFound, echo
from branchline.server.dispatch import store
from branchline.server.dispatch import validate as check
from branchline.server.dispatch.call_schema import calls
from branchline.server.dispatch.calls import access, position, ringing, sql
from branchline.server.dispatch.calls.core import CallCore
from branchline.server.dispatch.calls.model import (
    ACTIVE,
    ENDED,
    HELD,
    LEFT,
    MODES,
    OPEN,
    QUEUED,
    RINGING,
    CallView,
    call_view,
)
from branchline.server.dispatch.model import (
    Actor,
)
from branchline.server.dispatch.tasks import offers


@store.retrying
def request_call(
    core: CallCore, terminal: Actor, branch: str, request_id: str, business_type: str, mode: str
) -> CallView:
    """Queue the terminal for a teller with ``business_type``; offered at once to a free
    teller of its branch when there is one. Repeating ``request_id`` returns that call."""
    access.require_terminal(terminal)
    check.ident("request_id", request_id)
    check.skill("business_type", business_type)
    if mode not in MODES:
        raise InvalidArgument("mode", f"must be one of {', '.join(MODES)}")
    with core.tx() as tx:
        # This request's call and the terminal's open ones, in one query.
        mine = tx.conn.execute(
            sql.TERMINAL_REQUEST_OR_OPEN, {"b_terminal_id": terminal.id, "b_request_id": request_id}
        ).all()
        same = next((r for r in mine if r.request_id == request_id), None)
        if same is not None:
            return position.view(tx.conn, same)
        already = next((r for r in mine if r.state in OPEN), None)
        if already is not None:
            raise FailedPrecondition(
                f"request_id: terminal {terminal.id} already has call {already.call_id} "
                "open; leave it first",
                field="request_id",
            )
        found = tx.conn.execute(sql.BRANCH_STRATEGY, {"b_branch_id": branch}).first()
        if found is None:
            raise NotFound(
                f"branch: terminal {terminal.id}'s branch {echo(branch)} is not set up",
                field="branch",
            )
        strategy = found.routing_strategy or core.dispatch.strategy
        # The teller first, so the call is written once, already ringing (or queued).
        teller_id = ringing.ring(core, tx, branch, business_type, strategy)
        try:
            row = tx.conn.execute(
                sql.INSERT_CALL,
                {
                    "call_id": "C-" + secrets.token_hex(6),
                    "request_id": request_id,
                    "terminal_id": terminal.id,
                    "branch": branch,
                    "business_type": business_type,
                    "mode": mode,
                    "state": QUEUED if teller_id is None else RINGING,
                    "teller_id": teller_id,
                    "created_at": tx.now,
                    "routed_at": None if teller_id is None else tx.now,
                    "end_reason": "",
                    "updated_at": tx.now,
                },
            ).one()
        except IntegrityError:
            # Rolled back with the teller it took.
            raise FailedPrecondition(
                f"request_id: {request_id} was sent twice at once; ask again", field="request_id"
            ) from None
        return position.view(tx.conn, row)


@store.retrying
def leave(core: CallCore, terminal: Actor, call_id: str, reason: str = "") -> CallView:
    """The customer leaves the queue, or hangs up (ringing or active)."""
    access.require_terminal(terminal)
    check.text("reason", reason, check.MAX_REASON)
    with core.tx() as tx:
        row = access.open_call_of(tx.conn, terminal, call_id, lock=True)
        if row.state not in OPEN:
            raise FailedPrecondition(
                f"call_id: call {row.call_id} is already {row.state}", field="call_id"
            )
        return position.view(tx.conn, finish(core, tx, row, LEFT, reason or "the customer left"))


def terminal_calls(core: CallCore, terminal: Actor, call_id: str = "") -> list[CallView]:
    """The terminal's open calls (or one call of its own) with position and wait."""
    access.require_terminal(terminal)
    with core.engine.connect() as conn:
        if call_id:
            return [position.view(conn, access.open_call_of(conn, terminal, call_id))]
        rows = conn.execute(
            select(calls).where(calls.c.terminal_id == terminal.id, calls.c.state.in_(OPEN))
        ).all()
        return [position.view(conn, row) for row in rows]


def open_calls_of(core: CallCore, terminal_ids: Sequence[str]) -> dict[str, CallView]:
    """The open call of each of these terminals (for pushing), with position and wait."""
    if not terminal_ids:
        return {}
    with core.engine.connect() as conn:
        rows = conn.execute(sql.OPEN_CALLS_OF, {"b_terminal_ids": list(terminal_ids)}).all()
        positions = position.positions_of(conn, [r for r in rows if r.state == QUEUED])
        return {row.terminal_id: position.with_position(row, positions) for row in rows}


def last_call_of(core: CallCore, terminal_id: str) -> CallView | None:
    with core.engine.connect() as conn:
        row = conn.execute(
            select(calls)
            .where(calls.c.terminal_id == terminal_id)
            .order_by(calls.c.updated_at.desc())
            .limit(1)
        ).first()
        return call_view(row) if row is not None else None


def branch_queue(core: CallCore, teller: Actor) -> list[CallView]:
    """The calls of the teller's branch: queued (in order), ringing and active."""
    record = access.teller(core, teller)
    with core.engine.connect() as conn:
        rows = conn.execute(
            select(calls)
            .where(calls.c.branch == record.branch_id, calls.c.state.in_(OPEN))
            .order_by(calls.c.created_at, calls.c.call_id)
        ).all()
        positions = position.positions(conn, {(r.branch, r.business_type) for r in rows})
        return [position.with_position(row, positions) for row in rows]


def current(core: CallCore, teller: Actor) -> CallView:
    access.teller(core, teller)
    with core.engine.connect() as conn:
        row = conn.execute(
            select(calls).where(calls.c.teller_id == teller.id, calls.c.state.in_(HELD))
        ).first()
    if row is None:
        raise NotFound(f"teller {teller.id} has no call ringing or active")
    return call_view(row)


@store.retrying
def answer(core: CallCore, teller: Actor, call_id: str = "") -> CallView:
    access.teller(core, teller)
    with core.tx() as tx:
        if not call_id:
            found = tx.conn.execute(
                select(calls.c.call_id).where(
                    calls.c.teller_id == teller.id, calls.c.state == RINGING
                )
            ).first()
            if found is None:
                raise FailedPrecondition(
                    f"call_id: no call is ringing at teller {teller.id}", field="call_id"
                )
            call_id = found.call_id
        row = access.held_call(tx.conn, teller, call_id, lock=True)
        if row.state != RINGING:
            raise FailedPrecondition(
                f"call_id: call {call_id} is {row.state}, not ringing", field="call_id"
            )
        tx.conn.execute(
            update(calls)
            .where(calls.c.call_id == call_id, calls.c.state == RINGING)
            .values(state=ACTIVE, answered_at=tx.now, updated_at=tx.now)
        )
        return call_view(access.call_or_404(tx.conn, call_id))


@store.retrying
def end(core: CallCore, teller: Actor, call_id: str, reason: str = "") -> CallView:
    access.teller(core, teller)
    check.text("reason", reason, check.MAX_REASON)
    with core.tx() as tx:
        row = access.held_call(tx.conn, teller, call_id, lock=True)
        return call_view(
            finish(core, tx, row, ENDED, reason or f"teller {teller.id} ended the call")
        )


def finish(core: CallCore, tx: store.Tx, row: Row[Any], state: str, reason: str) -> Row[Any]:
    """End the call (the row as written); its teller is free for the next."""
    done = tx.conn.execute(
        sql.FINISH,
        {
            "b_call_id": row.call_id,
            "b_expect": row.state,
            "b_state": state,
            "b_reason": reason,
            "b_now": tx.now,
        },
    ).first()
    if done is None:
        raise FailedPrecondition(f"call {row.call_id} changed meanwhile; try again")
    if row.state in HELD and row.teller_id:
        # The teller is free again: the next queued call (or task) is theirs.
        offers.release(core.dispatch, tx, row.teller_id, handled=row.state == ACTIVE, pull=True)
    return done
