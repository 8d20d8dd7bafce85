"""Tube withdrawal: authorised against the balance (a hold), delivered by the back office.

The hold is the host's approval. It is captured (posted) only after the customer has taken
the carrier out; if the carrier never comes, is lost, or is not taken, the terminal reverses
it — the server releases the hold exactly once and opens an incident for the branch.
"""

from __future__ import annotations

from branchline.agent.tube import machines as m
from branchline.agent.tube.deposit import let_customer_take, wait_for_carrier
from branchline.agent.tube.engine import Handler, Live, TubeEngine, event
from branchline.v1 import tube_pb2 as pb

S = pb.TubeState


async def authorising(engine: TubeEngine, live: Live) -> None:
    reply = await engine.answer(live)
    if reply.code:
        # Set without waking anyone: the caller hears it with the final state.
        live.code, live.message, live.bad_field = reply.code, reply.message, reply.field
        await engine.advance(
            live,
            m.CANCELED,
            {"code": reply.code, "message": reply.message[:300], "field": reply.field[:128]},
            ejournal=("tube_refused", {"code": reply.code, "field": reply.field[:128]}),
        )
        return
    await engine.advance(
        live,
        "awaiting_delivery",
        {"hold_id": reply.txn.hold_id},
        ejournal=(
            "tube_authorised",
            {"hold_id": reply.txn.hold_id, "account_amount": reply.txn.quote.account_amount},
        ),
    )


async def _reverse(engine: TubeEngine, live: Live, reason: str) -> None:
    await engine.advance(
        live,
        m.REVERSING,
        {"reason": reason},
        message=event(pb.TUBE_EVENT_REVERSE, reason=reason),
        ejournal=("tube_reversing", {"reason": reason}),
    )


async def awaiting_delivery(engine: TubeEngine, live: Live) -> None:
    deadline = live.stage_at + engine.settings.delivery_timeout
    arrived = await wait_for_carrier(engine, live, deadline, cancel_allowed=True)
    if arrived == "canceled":
        await engine.advance(
            live,
            m.CANCELING,
            {"reason": "customer_canceled"},
            message=event(pb.TUBE_EVENT_CANCEL, reason="customer_canceled"),
            ejournal=("tube_canceled", {"reason": "customer_canceled"}),
        )
        return
    if isinstance(arrived, str):
        await _reverse(engine, live, arrived)
        return
    await engine.advance(
        live,
        "arrived",
        {"carrier_id": arrived},
        message=event(pb.TUBE_EVENT_CARRIER_ARRIVED, carrier_id=arrived),
        ejournal=("tube_carrier_arrived", {"carrier_id": arrived}),
    )


async def arrived(engine: TubeEngine, live: Live) -> None:
    if await let_customer_take(engine, live):
        await engine.advance(
            live,
            "taken",
            message=event(pb.TUBE_EVENT_CARRIER_TAKEN),
            ejournal=("tube_carrier_taken", {}),
        )
        return
    # Not taken: the door is shut on it; the back office fetches it, the money stays put.
    await _reverse(engine, live, "not_taken")


async def taken(engine: TubeEngine, live: Live) -> None:
    deadline = live.stage_at + engine.settings.customer_timeout
    intent = await engine.wait_intent(live, frozenset({"confirm_receipt"}), deadline)
    confirmed = intent is not None
    await engine.advance(
        live,
        "capturing",
        {"customer_confirmed": confirmed},
        message=event(pb.TUBE_EVENT_CONFIRM, customer_confirmed=confirmed),
        ejournal=("tube_receipt_confirmed" if confirmed else "tube_receipt_unconfirmed", {}),
    )


async def capturing(engine: TubeEngine, live: Live) -> None:
    reply = await engine.answer(live)
    if not reply.code and reply.txn.state == S.TUBE_STATE_POSTED:
        await engine.advance(
            live,
            m.POSTED,
            {"entry_id": reply.txn.entry_id, "balance_after": reply.txn.balance_after},
            ejournal=(
                "tube_posted",
                {"entry_id": reply.txn.entry_id, "balance_after": reply.txn.balance_after},
            ),
        )
        return
    reason = "capture_refused"
    await engine.advance(
        live,
        m.HANDING_OVER,
        {"reason": reason},
        message=event(
            pb.TUBE_EVENT_HANDOVER, reason=reason, detail=f"{reply.code}: {reply.message}"[:300]
        ),
        ejournal=("tube_handover", {"reason": reason}),
    )


HANDLERS: dict[str, Handler] = {
    "authorising": authorising,
    "awaiting_delivery": awaiting_delivery,
    "arrived": arrived,
    "taken": taken,
    "capturing": capturing,
}
