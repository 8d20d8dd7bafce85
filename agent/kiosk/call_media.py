"""The video-teller call's media relay between the kiosk page and the bank.

The page and the teller's console page exchange audio and video with WebRTC, browser to
browser; this module only carries their signalling (docs/flows/calls.md "Media"):

- the teller's SDP offer and ICE candidates (pushed by the server as ``teller_signal``) go
  to the pages as ``{"type": "call_signal", "call_id", "kind", "payload", "signal_id"}``;
- the page's answer and candidates come back as ``call_signal`` frames and go to the server
  (``call_signal`` on TerminalLink);
- ``{"type": "call_media", "event": "joined"|"ended", "call_id"}`` from the page: the page
  that joined owns the call's media; when it reports the media ended (its peer connection
  failed) or goes away (reload, closed), the call is hung up, so both sides see it end.

It also follows the call session's events for the video screen: a state change or a
signature request re-derives the screen at once (not at the next tick), and a call a
previous agent process left open (hung up at start-up, ``agent_restarted``) brings the
customer to the video screen that offers to call again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from branchline.agent.customer.call import ENDED, RESTARTED, CallRefused
from branchline.agent.kiosk.flows import video
from branchline.agent.uplink import UplinkUnavailable
from branchline.common.errors import DomainError, FailedPrecondition, InvalidArgument
from branchline.common.logs import log_event

if TYPE_CHECKING:
    from branchline.agent.kiosk.session import KioskSession
    from branchline.v1 import agent_local_pb2 as local_pb2
    from branchline.v1 import calls_pb2

log = logging.getLogger("branchline.agent.kiosk.call")

Send = Callable[[str], None]
FRAME_TYPES = ("call_signal", "call_media")
MEDIA_EVENTS = ("joined", "ended")
MAX_PAYLOAD = 16 * 1024
# Screens a restart's "call again" may replace (never a customer's transaction).
IDLE_SCREENS = frozenset({"attract", "resuming", "video"})


class CallMedia:
    def __init__(self, session: KioskSession) -> None:
        self.session = session
        # call id -> the page (its sender) whose peer connection carries the call.
        self.owner: dict[str, Send] = {}

    # -- the call session's events -------------------------------------------------------

    async def follow(self) -> None:
        """Forward the teller's signals to the pages; re-derive the video screen."""
        with self.session.agent.calls.watch() as events:
            while True:
                event = await events.get()
                try:
                    self._on_event(event)
                except Exception as exc:  # one bad event must not stop the relay
                    log.error("call event failed", exc_info=exc)

    def _on_event(self, event: local_pb2.CallEvent) -> None:
        session = self.session
        if event.kind == "signal":
            signal = event.signal
            session.send_frame(
                {
                    "type": "call_signal",
                    "call_id": signal.call_id,
                    "kind": signal.kind,
                    "payload": signal.payload,
                    "signal_id": signal.signal_id,
                },
                opaque=True,
            )
            return
        if event.kind == "call":
            self._on_call(event.call)
        if session.screen == "video":
            video.refresh(session)

    def _on_call(self, call: calls_pb2.Call) -> None:
        session = self.session
        if call.state not in ENDED:
            return
        if self.owner.pop(call.call_id, None) is not None or call.call_id == _shown(session):
            session.send_frame({"type": "call_media", "event": "ended", "call_id": call.call_id})
        if call.end_reason == RESTARTED and session.screen in IDLE_SCREENS:
            log_event(log, "kiosk_call_again", call_id=call.call_id)
            video.show_ended(session, call)

    # -- frames from the page ------------------------------------------------------------

    async def on_frame(self, send: Send, message: dict[str, Any]) -> None:
        """One ``call_signal`` or ``call_media`` frame; a refusal goes back to the pages."""
        kind = str(message.get("type"))
        try:
            call_id = self._held_call(message.get("call_id"))
            if kind == "call_signal":
                await self._relay(call_id, message)
            else:
                await self._media_event(send, call_id, message.get("event"))
        except DomainError as exc:
            self.session.refuse(exc, kind)

    def _held_call(self, call_id: object) -> str:
        if not isinstance(call_id, str) or not call_id:
            raise InvalidArgument("call_id", "must name the call", reason="invalid_frame")
        call = self.session.agent.calls.call
        if call is None or call.call_id != call_id or call.state in ENDED:
            raise FailedPrecondition(
                f"call_id: {call_id[:40]!r} is not this terminal's open call", reason="no_call"
            )
        return call_id

    async def _relay(self, call_id: str, message: dict[str, Any]) -> None:
        kind, payload = message.get("kind"), message.get("payload")
        if kind not in ("answer", "candidate", "offer"):
            raise InvalidArgument(
                "kind", "must be offer, answer or candidate", reason="invalid_frame"
            )
        if not isinstance(payload, str) or not payload or len(payload) > MAX_PAYLOAD:
            raise InvalidArgument(
                "payload", f"must be the SDP or candidate, at most {MAX_PAYLOAD} characters"
            )
        try:
            await self.session.agent.calls.send_signal(call_id, str(kind), payload)
        except CallRefused as exc:
            raise exc.as_domain() from None
        except UplinkUnavailable as exc:
            raise FailedPrecondition(
                f"the bank cannot be reached: {exc}", reason="bank_unavailable"
            ) from None

    async def _media_event(self, send: Send, call_id: str, event: object) -> None:
        if event not in MEDIA_EVENTS:
            raise InvalidArgument(
                "event", f"one of {', '.join(MEDIA_EVENTS)}", reason="invalid_frame"
            )
        if event == "joined":
            self.owner[call_id] = send
            log_event(log, "kiosk_call_media_joined", call_id=call_id)
            return
        self.owner.pop(call_id, None)
        await self._hang_up(call_id, "the customer's media ended")

    async def _hang_up(self, call_id: str, reason: str) -> None:
        log_event(log, "kiosk_call_hung_up", call_id=call_id, reason=reason)
        with contextlib.suppress(CallRefused, UplinkUnavailable):
            await self.session.agent.calls.leave(call_id, reason)
        if self.session.screen == "video":
            video.refresh(self.session)

    def page_gone(self, send: Send) -> None:
        """A page closed (reload, browser gone): the call whose media it carried ends."""
        for call_id, owner in list(self.owner.items()):
            if owner is send:
                del self.owner[call_id]
                self.session.spawn(
                    self._hang_up(call_id, "the kiosk page closed"), "call_page_gone", ""
                )


def _shown(session: KioskSession) -> str:
    return str(session.scratch.get("call_id", ""))


def attach(session: KioskSession) -> CallMedia:
    """Give ``session`` its call media relay and start following the call session."""
    media = CallMedia(session)
    session.call_media = media
    session.keep(asyncio.ensure_future(media.follow()))
    return media
