"""The electronic teller's screen: the customer types a question, the server's assistant
answers from the bank's knowledge base (or hands over), shown as a chat; an answer may
offer the guided flow it recognised; "talk to a person" is always on the screen, and
"this did not help" marks the last answer.

A hand-over (asked for, or decided by the server: sensitive topic, low confidence, two
unhelpful answers) opens a video-teller call and gives its id to the assistant, so the
teller sees the conversation so far; the screen moves to the call's queue (flows/video.py).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from branchline.agent.customer.assistant import client_for
from branchline.agent.kiosk import i18n, services
from branchline.common.errors import FailedPrecondition, InvalidArgument
from branchline.common.logs import log_event
from branchline.common.redaction import redact_text
from branchline.v1 import assistant_pb2 as apb
from branchline.v1 import calls_pb2

if TYPE_CHECKING:
    from branchline.agent.kiosk.session import KioskSession

log = logging.getLogger("branchline.agent.kiosk")

MAX_TEXT = 500
# The guided flows an answer may start, as the kiosk's services.
FLOWS = ("deposit", "withdrawal", "statement", "rates", "cheque")
HANDOVER_BUSINESS = "other"


def _chat(session: KioskSession) -> dict[str, Any]:
    chat: dict[str, Any] = session.scratch.setdefault(
        "assistant", {"conversation_id": "", "messages": []}
    )
    return chat


def _available(session: KioskSession) -> set[str]:
    live = services.live_from_agent(session.agent)
    return {o.id for o in services.offers(live) if o.available}


def _data(session: KioskSession, busy: bool = False) -> dict[str, Any]:
    chat = _chat(session)
    available = _available(session)
    messages = [
        {**m, "startable": bool(m.get("action")) and m["action"] in available}
        for m in chat["messages"]
    ]
    last_answer = next((m for m in reversed(messages) if m["from"] == "assistant"), None)
    return {
        "messages": messages,
        "busy": busy,
        "can_feedback": last_answer is not None and not last_answer.get("rated"),
        "automated": True,
    }


def show(session: KioskSession) -> None:
    """A new conversation each time the screen is opened (the next customer never sees the
    last one's)."""
    session.scratch["assistant"] = {"conversation_id": "", "messages": []}
    session.show("assistant", **_data(session))


def refresh(session: KioskSession) -> None:
    session.update(**_data(session, bool(session.data.get("busy"))))


def _say(session: KioskSession, who: str, text: str, **extra: Any) -> None:
    _chat(session)["messages"].append({"from": who, "text": text, **extra})


async def _after_reply(session: KioskSession, reply: apb.AssistantReply) -> None:
    chat = _chat(session)
    chat["conversation_id"] = reply.conversation_id
    if reply.outcome == apb.ASSISTANT_OUTCOME_ANSWER:
        _say(
            session,
            "assistant",
            reply.answer,
            action=reply.action,
            entry_id=reply.entry_id,
            confidence=round(reply.confidence, 2),
        )
        session.update(**_data(session))
    elif reply.outcome == apb.ASSISTANT_OUTCOME_HANDOVER:
        await _hand_over(session, reply.handover_reason, reply.topic)
    else:
        session.update(**_data(session))


async def _ask(session: KioskSession, text: str) -> None:
    chat = _chat(session)
    _say(session, "customer", text)
    session.update(**_data(session, busy=True))
    try:
        reply = await client_for(session.agent).ask(chat["conversation_id"], session.lang, text)
    finally:
        if session.screen == "assistant":
            session.update(**_data(session))
    await _after_reply(session, reply)


async def _feedback(session: KioskSession) -> None:
    chat = _chat(session)
    for message in reversed(chat["messages"]):
        if message["from"] == "assistant":
            message["rated"] = True
            break
    reply = await client_for(session.agent).feedback(chat["conversation_id"], False)
    _say(session, "system", "", message_key="assistant.noted_unhelpful")
    await _after_reply(session, reply)


async def _hand_over(session: KioskSession, reason: str, topic: str = "") -> None:
    """Open a teller call for this conversation and follow it on the video screen."""
    from branchline.agent.kiosk.flows import video

    chat = _chat(session)
    client = client_for(session.agent)
    if reason == "requested" and chat["conversation_id"]:
        await client.hand_over(chat["conversation_id"], reason)
    _say(session, "system", "", message_key=f"assistant.handover.{reason}", topic=topic)
    session.update(**_data(session, busy=True))
    try:
        call = await video._ask(
            session.agent.calls.request_teller(HANDOVER_BUSINESS, calls_pb2.CALL_MODE_VIDEO_TELLER)
        )
    except BaseException:
        if session.screen == "assistant":  # refused: the customer stays with the chat
            session.update(**_data(session))
        raise
    # Busy until the video screen shows: the chat takes no question while the call is set up.
    if chat["conversation_id"]:
        try:
            await client.attach_call(chat["conversation_id"], call.call_id)
        except Exception as exc:  # the call goes on; its teller sees no transcript
            log_event(
                log, "assistant_attach_failed", logging.WARNING, call_id=call.call_id,
                error=repr(exc)[:200],
            )  # fmt: skip
    log_event(
        log, "assistant_handed_over", reason=reason, topic=topic, call_id=call.call_id,
        conversation=chat["conversation_id"],
    )  # fmt: skip
    session.scratch["call_id"] = call.call_id
    session.show(
        "video",
        **video.video_data(session),
        from_assistant=True,
        handover=handover_view(session, reason, topic),
    )


def handover_view(session: KioskSession, reason: str, topic: str = "") -> dict[str, str]:
    """Why the customer is handed over, for the video screen (static/screens/handover.js):
    a sensitive topic names it ("this is about a lost card"), else the reason says it."""
    known = i18n.catalogue(session.lang)
    key = f"assistant.why.topic.{topic}" if topic else f"assistant.why.{reason}"
    if key not in known:
        key = f"assistant.why.{reason}" if f"assistant.why.{reason}" in known else "assistant.why"
    return {"reason": reason, "topic": topic, "message_key": key}


def _start_flow(session: KioskSession, service: str) -> None:
    from branchline.agent.kiosk.flows import attract, card_pin, enter

    chosen = attract.offer(session, service)
    if chosen.id in services.SIGNED_IN and session.customer is None:
        card_pin.start(session, chosen.id)  # card and PIN first, then the flow
    else:
        enter(session, chosen.id)


async def on_action(session: KioskSession, action: str, data: dict[str, Any]) -> None:
    busy = bool(session.data.get("busy"))
    if action == "back":
        session.home()
    elif action == "person":
        session.spawn(_hand_over(session, "requested"), "assistant_person", action)
    elif busy:
        raise FailedPrecondition(
            f"action: {action[:32]!r} waits for the answer", reason="assistant_busy"
        )
    elif action == "ask":
        text = data.get("text")
        if not isinstance(text, str) or not text.strip():
            raise InvalidArgument("text", "type a question", reason="required")
        if len(text) > MAX_TEXT:
            raise InvalidArgument("text", f"at most {MAX_TEXT} characters", reason="too_long")
        # A card number typed into the question is masked before it is shown or sent.
        session.spawn(_ask(session, redact_text(text.strip())), "assistant_ask", action)
    elif action == "not_helpful":
        if not _data(session)["can_feedback"]:
            raise FailedPrecondition(
                "action: there is no answer to mark", reason="no_answer_to_rate"
            )
        session.spawn(_feedback(session), "assistant_feedback", action)
    elif action == "start":
        service = data.get("service")
        offered = {m.get("action") for m in _chat(session)["messages"]}
        if service not in FLOWS or service not in offered:
            raise InvalidArgument(
                "service", "start a flow an answer offered", reason="unknown_service"
            )
        _start_flow(session, str(service))
    else:
        raise FailedPrecondition(
            f"action: the assistant takes ask, not_helpful, person, start or back, "
            f"not {action[:32]!r}",
            reason="wrong_screen",
        )
