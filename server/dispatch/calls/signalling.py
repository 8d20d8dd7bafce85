"""WebRTC signalling relayed between the teller and the terminal of a call (the server relays,
never reads, the media)."""

from __future__ import annotations

from sqlalchemy import select

from branchline.common.errors import FailedPrecondition, InvalidArgument
from branchline.server.dispatch.call_schema import call_signals, calls
from branchline.server.dispatch.calls import access
from branchline.server.dispatch.calls.core import CallCore
from branchline.server.dispatch.calls.model import (
    HELD,
    MAX_CANDIDATE,
    MAX_SDP,
    SIGNAL_KINDS,
    SignalView,
    signal_view,
)
from branchline.server.dispatch.model import (
    TELLER,
    Actor,
)
from branchline.server.storage import commit_order


def add_signal(core: CallCore, actor: Actor, call_id: str, kind: str, payload: str) -> SignalView:
    """Relay one SDP offer / answer or ICE candidate to the other side of the call."""
    if kind not in SIGNAL_KINDS:
        raise InvalidArgument("kind", f"must be one of {', '.join(SIGNAL_KINDS)}")
    limit = MAX_CANDIDATE if kind == "candidate" else MAX_SDP
    if not payload:
        raise InvalidArgument("payload", "must not be empty")
    if len(payload.encode()) > limit:
        raise InvalidArgument("payload", f"a {kind} is at most {limit} bytes")
    with core.tx() as tx:
        if actor.role == TELLER:
            access.teller(core, actor)
            row = access.held_call(tx.conn, actor, call_id)
            sender = "teller"
        else:
            row = access.open_call_of(tx.conn, actor, call_id)
            sender = "terminal"
        if row.state not in HELD:
            raise FailedPrecondition(
                f"call_id: call {call_id} is {row.state}; signalling needs a teller on it",
                field="call_id",
            )
        commit_order.take_turns(tx.conn, f"call_signals:{call_id}:{sender}")
        signal_id = tx.conn.execute(
            call_signals.insert()
            .values(call_id=call_id, sender=sender, kind=kind, payload=payload, at=tx.now)
            .returning(call_signals.c.id)
        ).scalar_one()
        return SignalView(int(signal_id), call_id, sender, kind, payload, tx.now)


def signals_after(
    core: CallCore, actor: Actor, call_id: str, after_id: int, *, check_access: bool = True
) -> list[SignalView]:
    """The other side's signals of the call after ``after_id``."""
    with core.engine.connect() as conn:
        if actor.role == TELLER:
            if check_access:
                access.held_call(conn, actor, call_id, any_state=True)
            sender = "terminal"
        else:
            if check_access:
                access.open_call_of(conn, actor, call_id)
            sender = "teller"
        rows = conn.execute(
            select(call_signals)
            .where(
                call_signals.c.call_id == call_id,
                call_signals.c.sender == sender,
                call_signals.c.id > after_id,
            )
            .order_by(call_signals.c.id)
        )
        return [signal_view(r) for r in rows]


def terminal_signals(core: CallCore, terminal_id: str, after_id: int) -> list[SignalView]:
    """The teller's signals for the terminal's held call after ``after_id`` (to deliver)."""
    with core.engine.connect() as conn:
        rows = conn.execute(
            select(call_signals)
            .join(calls, calls.c.call_id == call_signals.c.call_id)
            .where(
                calls.c.terminal_id == terminal_id,
                calls.c.state.in_(HELD),
                call_signals.c.sender == "teller",
                call_signals.c.id > after_id,
            )
            .order_by(call_signals.c.id)
        ).all()
        return [signal_view(r) for r in rows]
