"""Video-teller request: business type and mode, the live queue position and estimated wait,
leave the queue. The call's media comes in a later issue; this is the queue as the server
pushes it to the agent's call session."""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any

from branchline.agent.customer.call import ENDED, CallRefused
from branchline.agent.kiosk import i18n
from branchline.agent.uplink import UplinkUnavailable
from branchline.common.errors import FailedPrecondition, InvalidArgument, Unavailable
from branchline.common.logs import log_event
from branchline.v1 import calls_pb2

if TYPE_CHECKING:
    from branchline.agent.kiosk.session import KioskSession

log = logging.getLogger("branchline.agent.kiosk")

BUSINESS_TYPES = ("account_opening", "loan", "card_services", "foreign_exchange", "other")
MODES = {
    "video_teller": calls_pb2.CALL_MODE_VIDEO_TELLER,
    "video_service": calls_pb2.CALL_MODE_VIDEO_SERVICE,
    "super_counter": calls_pb2.CALL_MODE_SUPER_COUNTER,
}
STATES = {
    calls_pb2.CALL_STATE_QUEUED: "queued",
    calls_pb2.CALL_STATE_RINGING: "connecting",
    calls_pb2.CALL_STATE_ACTIVE: "connected",
    calls_pb2.CALL_STATE_ENDED: "ended",
    calls_pb2.CALL_STATE_LEFT: "ended",
}


def video_data(session: KioskSession) -> dict[str, Any]:
    call_id = session.scratch.get("call_id")
    call = session.agent.calls.call
    data: dict[str, Any] = {
        "state": "choose",
        "business_types": list(BUSINESS_TYPES),
        "modes": list(MODES),
        "position": 0,
        "estimated_wait": "",
        "business_type": "",
    }
    if call_id and call is not None and call.call_id == call_id:
        data.update(
            state=STATES.get(call.state, "queued"),
            position=call.position,
            estimated_wait=i18n.format_seconds(session.lang, call.estimated_wait_seconds),
            business_type=call.business_type,
        )
    return data


def show(session: KioskSession) -> None:
    session.scratch.pop("call_id", None)
    session.show("video", **video_data(session))


def refresh(session: KioskSession) -> None:
    """The server pushes queue position and wait to the call session; follow it."""
    session.update(**video_data(session))


async def _ask(work: Any) -> calls_pb2.Call:
    try:
        call: calls_pb2.Call = await work
        return call
    except CallRefused as exc:
        raise FailedPrecondition(exc.message, reason=exc.code) from None
    except UplinkUnavailable as exc:
        raise Unavailable(f"the bank cannot be reached: {exc}", reason="bank_unavailable") from None


async def _request(session: KioskSession, business_type: str, mode: int) -> None:
    call = await _ask(session.agent.calls.request_teller(business_type, mode))  # type: ignore[arg-type]
    session.scratch["call_id"] = call.call_id
    session.update(**video_data(session))


async def leave_quietly(session: KioskSession) -> None:
    """At the end of a session: a call still queued is left (the customer has gone)."""
    call_id = session.scratch.get("call_id")
    call = session.agent.calls.call
    if not call_id or call is None or call.call_id != call_id or call.state in ENDED:
        return
    with contextlib.suppress(FailedPrecondition, Unavailable):
        await _ask(session.agent.calls.leave(call_id))
        log_event(log, "kiosk_call_left", call_id=call_id)


async def on_action(session: KioskSession, action: str, data: dict[str, Any]) -> None:
    state = session.data.get("state")
    if action == "back" and state in ("choose", "ended"):
        session.scratch.pop("call_id", None)
        session.home()
    elif action == "request" and state in ("choose", "ended"):
        business_type = data.get("business_type")
        if business_type not in BUSINESS_TYPES:
            raise InvalidArgument(
                "business_type",
                f"choose one of {', '.join(BUSINESS_TYPES)}",
                reason="invalid_business_type",
            )
        mode = data.get("mode", "video_teller")
        if mode not in MODES:
            raise InvalidArgument(
                "mode", f"choose one of {', '.join(MODES)}", reason="invalid_mode"
            )
        session.run(_request(session, str(business_type), MODES[str(mode)]), "video")
    elif action == "leave" and state in ("queued", "connecting"):
        session.spawn(_leave(session), "leave", action)
    else:
        raise FailedPrecondition(
            f"action: {action[:32]!r} is not taken while the call is {state}", reason="wrong_stage"
        )


async def _leave(session: KioskSession) -> None:
    call_id = session.scratch.get("call_id", "")
    await _ask(session.agent.calls.leave(call_id))
    session.update(**video_data(session))
