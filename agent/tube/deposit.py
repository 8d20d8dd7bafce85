"""Tube deposit: the customer sends a carrier, the back office counts, the customer decides.

One handler per journaled state; each acts and then ``advance``s exactly once. Every action
can run again after a crash: ``sending`` looks at the station before it sends, waits follow
the server's record, and messages go through the outbox.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from branchline.agent.tube import machines as m
from branchline.agent.tube.engine import (
    Handler,
    Live,
    TubeEngine,
    asset_to_dict,
    event,
)
from branchline.common.logs import log_event
from branchline.drivers.base import Completion, DeviceError
from branchline.v1 import calls_pb2
from branchline.v1 import tube_pb2 as pb

log = logging.getLogger("branchline.agent.tube.deposit")

S = pb.TubeState
# Station states in which the carrier has left, or is leaving, the terminal.
LEAVING = frozenset({"sending", "in_transit"})
GONE = frozenset({"empty", "ready_to_receive"})
SETTLED = frozenset(
    {
        S.TUBE_STATE_POSTED,
        S.TUBE_STATE_RETURNED,
        S.TUBE_STATE_REVERSED,
        S.TUBE_STATE_CANCELED,
        S.TUBE_STATE_HANDED_TO_TELLER,
    }
)
DISPUTE_BUSINESS = "tube_dispute"


async def opening(engine: TubeEngine, live: Live) -> None:
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
    await engine.advance(live, "awaiting_carrier")


async def awaiting_carrier(engine: TubeEngine, live: Live) -> None:
    deadline = live.stage_at + engine.settings.customer_timeout
    while True:
        intent = await engine.wait_intent(live, frozenset({"send", "cancel"}), deadline)
        status = await engine.station_status()
        loaded = status is not None and status.get("present") and status.get("state") == "loaded"
        if intent is None or intent.name == "cancel":
            reason = "walked_away" if intent is None else "customer_canceled"
            if loaded:
                # Items are locked in the terminal's station: the branch must fetch them.
                await engine.advance(
                    live,
                    m.HANDING_OVER,
                    {"reason": "carrier_left_in_station"},
                    message=event(
                        pb.TUBE_EVENT_HANDOVER,
                        reason="carrier_left_in_station",
                        detail=f"{reason}; carrier {status.get('carrier_id') if status else 0} "
                        "is in the terminal's station",
                    ),
                    ejournal=("tube_handover", {"reason": "carrier_left_in_station"}),
                )
                return
            await engine.advance(
                live,
                m.CANCELING,
                {"reason": reason},
                message=event(pb.TUBE_EVENT_CANCEL, reason=reason),
                ejournal=("tube_canceled", {"reason": reason}),
            )
            return
        if not loaded:
            state = status.get("state", "unknown") if status else "not answering"
            engine.say(
                live,
                "not_loaded",
                f"the station is {state}: put the carrier in the station and close the door",
            )
            continue
        assert status is not None
        carrier = int(status.get("carrier_id") or 0)
        await engine.advance(
            live,
            "sending",
            {"carrier_id": carrier},
            ejournal=("tube_carrier_sending", {"carrier_id": carrier}),
        )
        return


async def _hand_over(engine: TubeEngine, live: Live, reason: str, detail: str) -> None:
    await engine.advance(
        live,
        m.HANDING_OVER,
        {"reason": reason},
        message=event(pb.TUBE_EVENT_HANDOVER, reason=reason, detail=detail[:300]),
        ejournal=("tube_handover", {"reason": reason}),
    )


async def sending(engine: TubeEngine, live: Live) -> None:
    carrier = int(live.stage_data.get("carrier_id") or 0)
    status = await engine.station_status() or {}
    state = status.get("state", "")
    if status.get("status") == "hardware_error":
        await _hand_over(engine, live, "carrier_jammed", str(status.get("detail", "")))
        return
    if state in LEAVING or (state in GONE and not status.get("present") and live.recovered):
        # It left before the crash (or is leaving): follow it to the back office.
        await _follow_in_flight(engine, live, carrier)
        return
    try:
        await engine.station(
            "send", carrier_id=carrier, timeout=engine.settings.send_command_timeout
        )
    except DeviceError as exc:
        await _send_failed(engine, live, carrier, exc)
        return
    await _sent(engine, live, carrier)


async def _follow_in_flight(engine: TubeEngine, live: Live, carrier: int) -> None:
    deadline = time.monotonic() + engine.settings.send_command_timeout
    while time.monotonic() < deadline:
        status = await engine.station_status()
        if status is not None and status.get("status") == "hardware_error":
            reason = "carrier_lost" if "lost" in str(status.get("detail")) else "carrier_jammed"
            await _hand_over(engine, live, reason, str(status.get("detail", "")))
            return
        if status is not None and status.get("state") not in LEAVING:
            await _sent(engine, live, carrier)
            return
        await engine.sleep(0.5)
    await _hand_over(engine, live, "carrier_lost", "the carrier did not arrive in time")


async def _sent(engine: TubeEngine, live: Live, carrier: int) -> None:
    await engine.advance(
        live,
        "sent",
        {"carrier_id": carrier},
        message=event(pb.TUBE_EVENT_CARRIER_SENT, carrier_id=carrier),
        ejournal=("tube_carrier_sent", {"carrier_id": carrier}),
    )


async def _send_failed(engine: TubeEngine, live: Live, carrier: int, exc: DeviceError) -> None:
    log_event(log, "tube_send_failed", logging.WARNING, txn_id=live.txn_id, code=exc.code)
    if exc.completion is Completion.HARDWARE_ERROR and exc.code != "send_aborted":
        reason = "carrier_lost" if exc.code == "carrier_lost" else "carrier_jammed"
        await _hand_over(engine, live, reason, exc.message)
        return
    status = await engine.station_status()
    if status is not None and status.get("state") == "loaded" and status.get("present"):
        # Still here (door open, wrong carrier, far station busy): the customer can retry.
        await engine.advance(
            live, "awaiting_carrier", {"code": exc.code, "message": exc.message[:300]}
        )
        engine.say(live, exc.code, exc.message)
        return
    await _hand_over(engine, live, "carrier_unknown", f"send failed ({exc.code}): {exc.message}")


async def sent(engine: TubeEngine, live: Live) -> None:
    deadline = live.stage_at + engine.settings.count_timeout
    found = await engine.wait_server(
        live,
        lambda txn: txn.state == S.TUBE_STATE_COUNTED or txn.state in SETTLED,
        deadline,
    )
    if found is None:
        await _hand_over(engine, live, "count_timeout", "the back office did not count in time")
        return
    assert isinstance(found, pb.TubeTransaction)
    if found.state != S.TUBE_STATE_COUNTED:
        # The back office ended it (e.g. handed it to a teller): follow without a message.
        await engine.advance(live, m.HANDING_OVER, {"reason": "back_office", "server_final": 1})
        return
    await engine.advance(
        live,
        "counted",
        {
            "counted": asset_to_dict(found.counted),
            "account_amount": found.quote.account_amount,
            "rate": found.quote.rate,
        },
        ejournal=(
            "tube_count_shown",
            {
                "currency": found.counted.currency,
                "amount": found.counted.amount,
                "declared": found.requested.amount,
            },
        ),
    )


async def counted(engine: TubeEngine, live: Live) -> None:
    deadline = live.stage_at + engine.settings.customer_timeout
    intent = await engine.wait_intent(live, frozenset({"decide"}), deadline)
    if intent is None:
        await _hand_over(
            engine, live, "walked_away", "the customer left without confirming the count"
        )
        return
    if intent.decision == pb.DECISION_CONFIRM:
        await engine.advance(
            live,
            "confirming",
            message=event(pb.TUBE_EVENT_CONFIRM, customer_confirmed=True),
            ejournal=("tube_customer_confirmed", {}),
        )
        return
    wants = "teller" if intent.decision == pb.DECISION_DISPUTE_TELLER else "return"
    await engine.advance(
        live,
        "disputing",
        {"wants": wants},
        message=event(pb.TUBE_EVENT_DISPUTE, reason=f"dispute_{wants}"),
        ejournal=("tube_customer_disputed", {"wants": wants}),
    )


async def confirming(engine: TubeEngine, live: Live) -> None:
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
    code = reply.code or "not_posted"
    await _hand_over(engine, live, "posting_refused", f"{code}: {reply.message}")


async def disputing(engine: TubeEngine, live: Live) -> None:
    reply = await engine.answer(live)
    if not reply.code and reply.txn.state == S.TUBE_STATE_DISPUTED:
        await engine.advance(live, "awaiting_return")
        return
    if not reply.code and reply.txn.state == S.TUBE_STATE_HANDED_TO_TELLER:
        await _call_teller(engine, live)
        await engine.advance(live, m.HANDING_OVER, {"reason": "dispute_teller", "server_final": 1})
        return
    await _hand_over(engine, live, "dispute_refused", f"{reply.code}: {reply.message}")


async def _call_teller(engine: TubeEngine, live: Live) -> None:
    """Best effort: a video teller for the disputed count (the incident stands anyway)."""
    try:
        await engine.agent.calls.request_teller(DISPUTE_BUSINESS, calls_pb2.CALL_MODE_VIDEO_TELLER)
    except Exception as exc:
        log_event(log, "tube_teller_call_failed", logging.WARNING, error=repr(exc))


async def awaiting_return(engine: TubeEngine, live: Live) -> None:
    deadline = live.stage_at + engine.settings.delivery_timeout
    arrived = await wait_for_carrier(engine, live, deadline)
    if isinstance(arrived, str):
        await _hand_over(engine, live, arrived, "the returned carrier did not arrive")
        return
    await engine.advance(
        live,
        "return_arrived",
        {"carrier_id": arrived},
        message=event(pb.TUBE_EVENT_CARRIER_ARRIVED, carrier_id=arrived),
        ejournal=("tube_carrier_arrived", {"carrier_id": arrived}),
    )


async def return_arrived(engine: TubeEngine, live: Live) -> None:
    taken = await let_customer_take(engine, live)
    if taken:
        await engine.advance(
            live,
            m.RETURN_TAKEN,
            message=event(pb.TUBE_EVENT_CARRIER_TAKEN),
            ejournal=("tube_carrier_taken", {}),
        )
        return
    await _hand_over(engine, live, "not_taken", "the returned carrier was not taken out")


# -- shared with withdrawals ----------------------------------------------------------------


async def wait_for_carrier(
    engine: TubeEngine, live: Live, deadline: float, cancel_allowed: bool = False
) -> int | str:
    """The id of the carrier that arrived at the terminal, or why none did (a reason code,
    or ``"canceled"`` when the customer canceled before the back office sent it)."""
    dispatched_at: float | None = None
    while True:
        status = await engine.station_status()
        if status is not None:
            if status.get("state") == "arrived" and status.get("present"):
                return int(status.get("carrier_id") or 0)
            if status.get("status") == "hardware_error":
                return "carrier_lost" if "lost" in str(status.get("detail")) else "carrier_jammed"
        server = live.server
        if server is not None and server.state in (
            S.TUBE_STATE_DISPATCHED,
            S.TUBE_STATE_RETURNING,
        ):
            if dispatched_at is None:
                dispatched_at = time.time()
        elif cancel_allowed and engine.take_intent(live, frozenset({"cancel"})) is not None:
            return "canceled"
        now = time.time()
        if dispatched_at is not None and now > dispatched_at + engine.settings.transit_timeout:
            return "carrier_lost"
        if dispatched_at is None and now > deadline:
            return "delivery_timeout"
        try:
            result: dict[str, Any] = await engine.station(
                "wait_arrival",
                timeout=engine.settings.poll_seconds + 10,
                timeout_s=engine.settings.poll_seconds,
            )
            return int(result.get("carrier_id") or 0)
        except DeviceError as exc:
            if exc.completion is Completion.HARDWARE_ERROR:
                return "carrier_lost" if exc.code == "carrier_lost" else "carrier_jammed"
            if exc.completion is not Completion.TIMEOUT:
                log_event(
                    log, "tube_receive_problem", logging.WARNING, txn_id=live.txn_id, code=exc.code
                )
                await engine.sleep(engine.settings.poll_seconds)
        await engine.refresh(live)


async def let_customer_take(engine: TubeEngine, live: Live) -> bool:
    """Open the door and wait for the carrier to be taken out (time from the journaled step);
    closes the door either way. True when it was taken."""
    status = await engine.station_status()
    if status is not None and not status.get("present") and status.get("state") != "arrived":
        return True  # taken before a crash
    try:
        await engine.station("open_door", timeout=20)
    except DeviceError as exc:
        log_event(log, "tube_door_problem", logging.WARNING, txn_id=live.txn_id, code=exc.code)
    left = live.stage_at + engine.settings.take_timeout - time.time()
    try:
        await engine.station(
            "wait_removed", timeout=max(left, 0) + 15, timeout_s=max(left, 0.5), close=True
        )
        return True
    except DeviceError as exc:
        log_event(log, "tube_not_taken", logging.WARNING, txn_id=live.txn_id, code=exc.code)
    try:
        await engine.station("close_door", timeout=20)
    except DeviceError as exc:
        log_event(log, "tube_door_problem", logging.WARNING, txn_id=live.txn_id, code=exc.code)
    return False


HANDLERS: dict[str, Handler] = {
    "opening": opening,
    "awaiting_carrier": awaiting_carrier,
    "sending": sending,
    "sent": sent,
    "counted": counted,
    "confirming": confirming,
    "disputing": disputing,
    "awaiting_return": awaiting_return,
    "return_arrived": return_arrived,
}
