"""Video-teller request: business type and mode, the live queue position and estimated wait,
leave the queue; once a teller answers, the call (its media runs in the page, relayed by
``agent/kiosk/call_media.py``; docs/flows/calls.md "Media"): hang up, and the teller's
signature requests, which the customer signs on the PIN pad or declines."""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any

from branchline.agent.customer.call import ENDED, RESTARTED, CallRefused
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
# Seconds the customer has to sign on the pad once they chose to.
SIGN_SECONDS = 60.0


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
            call_id=call.call_id,
        )
        if data["state"] == "connected":
            data["media"] = {"ice_servers": session.settings.ice.for_page()}
            waiting = session.agent.calls.waiting_signatures(call.call_id)
            if waiting:
                data["signature"] = {
                    "command_id": waiting[0].command_id,
                    "title": waiting[0].title,
                    "lines": list(waiting[0].lines),
                    "signing": session.scratch.get("signing") == waiting[0].command_id,
                }
        elif data["state"] == "ended":
            data["end_reason"] = "restarted" if call.end_reason == RESTARTED else ""
    return data


def show(session: KioskSession) -> None:
    session.scratch.pop("call_id", None)
    session.show("video", **video_data(session))


def show_ended(session: KioskSession, call: calls_pb2.Call) -> None:
    """The call ``call`` ended while the customer could not see it (a restart): say so and
    offer to call again."""
    session.scratch["call_id"] = call.call_id
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
    elif action == "hangup" and state == "connected":
        session.spawn(_leave(session, "the customer hung up"), "hangup", action)
    elif action in ("sign", "decline_sign") and state == "connected":
        command_id = _signature_id(session, data)
        session.spawn(_sign(session, command_id, action == "sign"), "sign", action)
    else:
        raise FailedPrecondition(
            f"action: {action[:32]!r} is not taken while the call is {state}", reason="wrong_stage"
        )


async def _leave(session: KioskSession, reason: str = "") -> None:
    call_id = session.scratch.get("call_id", "")
    await _ask(session.agent.calls.leave(call_id, reason))
    session.update(**video_data(session))


def _signature_id(session: KioskSession, data: dict[str, Any]) -> int:
    wanted = session.data.get("signature")
    raw = data.get("command_id")
    if not isinstance(raw, int | str) or not str(raw).isdigit():
        raise InvalidArgument("command_id", "must be the number of the signature request")
    if not wanted or int(raw) != wanted["command_id"]:
        raise FailedPrecondition(
            f"command_id: no signature request {int(raw)} is waiting", reason="no_signature"
        )
    if wanted.get("signing"):
        raise FailedPrecondition("command_id: already signing on the pad", reason="signing")
    return int(raw)


async def _sign(session: KioskSession, command_id: int, confirm: bool) -> None:
    session.scratch["signing"] = command_id
    session.update(**video_data(session))
    try:
        with session.device_operation():
            outcome = await session.agent.calls.sign(command_id, confirm, SIGN_SECONDS)
    except CallRefused as exc:
        raise FailedPrecondition(exc.message, reason=exc.code) from None
    finally:
        session.scratch.pop("signing", None)
    log_event(log, "kiosk_signed", command_id=command_id, completion=outcome.completion)
    session.update(**video_data(session))
