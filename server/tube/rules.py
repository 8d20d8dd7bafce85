"""What a terminal's event does to a tube transaction: pure decisions, no database.

Deposit:    open -CARRIER_SENT-> in_transit -(back office: receive)-> received
            -(back office: count)-> counted -CONFIRM-> posted (ledger deposit)
            counted -DISPUTE dispute_return-> disputed -(back office: send)-> returning
            -CARRIER_TAKEN-> returned;  counted -DISPUTE dispute_teller-> handed_to_teller
            open -CANCEL-> canceled
Withdrawal: open (hold) -(back office: send)-> dispatched -CARRIER_TAKEN-> delivered
            -CONFIRM-> posted (capture); dispatched -CONFIRM-> posted as well
            open|dispatched -REVERSE-> reversed (hold released, incident)
            open -CANCEL-> canceled (hold released)
Either:     any state not final -HANDOVER-> handed_to_teller (incident)

An event repeating the one that brought the transaction to its current state (a terminal
recovering under a new request id) changes nothing and is answered with the record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from branchline.common.errors import FailedPrecondition
from branchline.server.tube import model as m

# Ledger calls an event makes.
POST_DEPOSIT = "post_deposit"
CAPTURE = "capture"
RELEASE = "release"


@dataclass(frozen=True)
class EventInput:
    kind: str
    carrier_id: int = 0
    reason: str = ""
    customer_confirmed: bool = False
    detail: str = ""


@dataclass(frozen=True)
class Step:
    """The change an event makes (or ``repeat``: none, answer with the record)."""

    to_state: str
    event: str = ""
    ledger: str | None = None
    incident: str | None = None
    carrier_id: int | None = None
    reason: str | None = None
    note: str | None = None
    repeat: bool = False


# Events that, sent again, repeat the transition into the state (kind -> state -> events).
_REPEATS: dict[str, dict[str, frozenset[str]]] = {
    m.DEPOSIT: {
        m.IN_TRANSIT: frozenset({m.CARRIER_SENT}),
        m.DISPUTED: frozenset({m.DISPUTE}),
        m.POSTED: frozenset({m.CONFIRM}),
        m.RETURNED: frozenset({m.CARRIER_TAKEN}),
        m.CANCELED: frozenset({m.CANCEL}),
        m.HANDED_TO_TELLER: frozenset({m.HANDOVER, m.DISPUTE}),
    },
    m.WITHDRAWAL: {
        m.DELIVERED: frozenset({m.CARRIER_TAKEN, m.CARRIER_ARRIVED}),
        m.POSTED: frozenset({m.CONFIRM}),
        m.REVERSED: frozenset({m.REVERSE}),
        m.CANCELED: frozenset({m.CANCEL}),
        m.HANDED_TO_TELLER: frozenset({m.HANDOVER}),
    },
}
# Events that make no sense for the kind at all.
_FOREIGN = {
    m.DEPOSIT: frozenset({m.REVERSE}),
    m.WITHDRAWAL: frozenset({m.CARRIER_SENT, m.DISPUTE}),
}


def wrong_state(row: Any, event: str, hint: str = "") -> FailedPrecondition:
    return FailedPrecondition(
        f"tube_event.kind: {event} is not possible for {row.kind} {row.txn_id} in state "
        f"{row.state}{('; ' + hint if hint else '')}",
        field="tube_event.kind",
        reason="wrong_state",
    )


def _is_repeat(row: Any, ev: EventInput) -> bool:
    if ev.kind not in _REPEATS[row.kind].get(row.state, frozenset()):
        return False
    if ev.kind == m.CARRIER_SENT:
        return ev.carrier_id == row.carrier_id
    if ev.kind == m.DISPUTE:
        wanted = m.DISPUTED if ev.reason == m.DISPUTE_RETURN else m.HANDED_TO_TELLER
        return row.state == wanted
    return True


def _arrived(row: Any, ev: EventInput) -> Step:
    """Recorded; a carrier other than the one sent is an incident, and still proceeds."""
    if ev.carrier_id and row.carrier_id and ev.carrier_id != row.carrier_id:
        return Step(row.state, m.ARRIVED, incident=m.WRONG_CARRIER_INCIDENT)
    return Step(row.state, m.ARRIVED)


def plan(row: Any, ev: EventInput) -> Step:
    """The step ``ev`` makes from ``row``'s state; FailedPrecondition when it is refused."""
    if ev.kind in _FOREIGN[row.kind]:
        raise FailedPrecondition(
            f"tube_event.kind: {ev.kind} does not apply to a {row.kind}",
            field="tube_event.kind",
            reason="wrong_kind",
        )
    if row.pending and row.pending != ev.kind:
        raise FailedPrecondition(
            f"tube_event.kind: {ev.kind} must wait: the terminal's {row.pending} of {row.kind} "
            f"{row.txn_id} is still being applied; send that again first",
            field="tube_event.kind",
            reason="wrong_state",
        )
    if _is_repeat(row, ev):
        return Step(row.state, repeat=True)
    if row.state in m.FINAL:
        raise wrong_state(row, ev.kind, "it is finished")
    if ev.kind == m.HANDOVER:
        return Step(m.HANDED_TO_TELLER, "handed_to_teller", incident=ev.reason, reason=ev.reason)
    if row.kind == m.DEPOSIT:
        return _deposit(row, ev)
    return _withdrawal(row, ev)


def _deposit(row: Any, ev: EventInput) -> Step:
    state = row.state
    if ev.kind == m.CARRIER_SENT and state == m.OPEN:
        return Step(m.IN_TRANSIT, "carrier_sent", carrier_id=ev.carrier_id)
    if ev.kind == m.CANCEL and state == m.OPEN:
        return Step(m.CANCELED, "canceled", reason=ev.reason or None)
    if ev.kind == m.CONFIRM and state == m.COUNTED:
        return Step(m.POSTED, "posted", ledger=POST_DEPOSIT)
    if ev.kind == m.DISPUTE and state == m.COUNTED:
        if ev.reason == m.DISPUTE_TELLER:
            return Step(
                m.HANDED_TO_TELLER,
                "handed_to_teller",
                incident=m.DISPUTE_INCIDENT,
                reason=ev.reason,
            )
        return Step(m.DISPUTED, "disputed", reason=ev.reason)
    if ev.kind == m.CARRIER_ARRIVED and state == m.RETURNING:
        return _arrived(row, ev)
    if ev.kind == m.CARRIER_TAKEN and state == m.RETURNING:
        return Step(m.RETURNED, "returned")
    hints = {
        m.CONFIRM: "the back office has not counted it yet"
        if state in (m.OPEN, m.IN_TRANSIT, m.RECEIVED)
        else "",
        m.CANCEL: "the carrier has left; hand it over instead",
    }
    raise wrong_state(row, ev.kind, hints.get(ev.kind, ""))


def _withdrawal(row: Any, ev: EventInput) -> Step:
    state = row.state
    if ev.kind == m.CARRIER_ARRIVED and state == m.DISPATCHED:
        return _arrived(row, ev)
    if ev.kind == m.CARRIER_TAKEN and state == m.DISPATCHED:
        return Step(m.DELIVERED, m.TAKEN)
    if ev.kind == m.CONFIRM and state in (m.DISPATCHED, m.DELIVERED):
        note = None if ev.customer_confirmed else "taken, receipt not confirmed by the customer"
        return Step(m.POSTED, "posted", ledger=CAPTURE, note=note)
    if ev.kind == m.REVERSE and state in (m.OPEN, m.DISPATCHED):
        return Step(m.REVERSED, "reversed", ledger=RELEASE, incident=ev.reason, reason=ev.reason)
    if ev.kind == m.CANCEL and state == m.OPEN:
        return Step(m.CANCELED, "canceled", ledger=RELEASE, reason=ev.reason or None)
    hints = {
        m.REVERSE: "the customer has the goods: confirm (customer_confirmed false) or hand over"
        if state == m.DELIVERED
        else "",
        m.CANCEL: "the carrier is on its way; reverse or hand over instead"
        if state == m.DISPATCHED
        else "",
        m.CONFIRM: "the back office has not sent the carrier yet" if state == m.OPEN else "",
    }
    raise wrong_state(row, ev.kind, hints.get(ev.kind, ""))
