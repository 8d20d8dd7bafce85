"""The teller's side of a video call's media: the console process relays the WebRTC
signalling between its page and the server (docs/flows/calls.md "Media"); the media itself
goes browser to browser.

- While the teller's call is active, ``Calls.WatchSignals`` (the terminal's answer and ICE
  candidates) is forwarded to the pages as ``{"type": "call_signal", "call_id", "kind",
  "payload", "signal_id"}``; the page's offer and candidates (``call_signal`` frames) go to
  ``Calls.SendSignal``.
- ``{"type": "call_media", "event": "joined"|"ended", "call_id"}`` from a page: the page that
  joined owns the media; when it reports the media ended, or goes away (reload, closed), the
  call is ended (``Calls.EndCall``), so the customer sees it end and may call again.
- A console process that starts while its teller is on an active call (it restarted: the
  page that carried the media is gone) ends that call first (``console_restarted``).
- When the call stops being active the pages get ``{"type": "call_media", "event":
  "ended", "call_id"}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import grpc

from branchline.common.errors import FailedPrecondition, InvalidArgument
from branchline.common.ice import IceServers
from branchline.common.logs import log_event
from branchline.server.console.client import StaffClient
from branchline.v1 import calls_pb2 as pb

log = logging.getLogger("branchline.console.call_media")

Send = Callable[[str], None]
FRAME_TYPES = ("call_signal", "call_media")
SIGNAL_KINDS = ("offer", "answer", "candidate")
MEDIA_EVENTS = ("joined", "ended")
MAX_PAYLOAD = 16 * 1024
RESTARTED = "console_restarted"
RETRY_SECONDS = 1.0


class CallMedia:
    def __init__(
        self, client: StaffClient, ice: IceServers, send_frame: Callable[[dict[str, Any]], None]
    ) -> None:
        self._client = client
        self._ice = ice
        self._send_frame = send_frame
        self.call_id = ""  # the active call whose signalling is relayed
        self.owner: Send | None = None
        self._watch: asyncio.Task[None] | None = None
        self._first = True

    def snapshot(self) -> dict[str, Any]:
        return {"call_id": self.call_id, "ice_servers": self._ice.for_page()}

    async def ended_stale(self, current: pb.Call | None) -> bool:
        """On the first look only: end an active call a previous console process left."""
        if not self._first:
            return False
        self._first = False
        if current is None or current.state != pb.CALL_STATE_ACTIVE:
            return False
        request = pb.EndCallRequest(call_id=current.call_id, reason=RESTARTED)
        with contextlib.suppress(grpc.aio.AioRpcError):
            await self._client.call(self._client.calls.EndCall, request)
        log_event(log, "stale_call_ended", call_id=current.call_id)
        return True

    async def follow(self, current: pb.Call | None) -> None:
        active = current.call_id if current and current.state == pb.CALL_STATE_ACTIVE else ""
        if active == self.call_id:
            return
        await self.stop()
        if self.call_id:
            self._send_frame({"type": "call_media", "event": "ended", "call_id": self.call_id})
        self.call_id, self.owner = active, None
        if active:
            self._watch = asyncio.ensure_future(self._relay_signals(active))

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
                await self._watch
            self._watch = None

    async def _relay_signals(self, call_id: str) -> None:
        last = 0
        while True:
            request = pb.WatchSignalsRequest(call_id=call_id, after_id=last)
            stream = self._client.stream(self._client.calls.WatchSignals, request)
            try:
                async for signal in stream:
                    last = signal.signal_id
                    self._send_frame(
                        {
                            "type": "call_signal",
                            "call_id": signal.call_id,
                            "kind": signal.kind,
                            "payload": signal.payload,
                            "signal_id": signal.signal_id,
                        }
                    )
            except grpc.aio.AioRpcError as exc:
                log.warning("signals of call %s: %s", call_id, exc.code())
            finally:
                stream.cancel()
            await asyncio.sleep(RETRY_SECONDS)

    # -- frames from the page ----------------------------------------------------------

    async def on_frame(self, send: Send, message: dict[str, Any]) -> None:
        call_id = message.get("call_id")
        if not isinstance(call_id, str) or not call_id:
            raise InvalidArgument("call_id", "must name the call", reason="invalid_frame")
        if call_id != self.call_id:
            raise FailedPrecondition(
                f"call_id: {call_id[:40]!r} is not your active call", field="call_id"
            )
        if message.get("type") == "call_signal":
            kind, payload = message.get("kind"), message.get("payload")
            if kind not in SIGNAL_KINDS:
                raise InvalidArgument("kind", f"one of {', '.join(SIGNAL_KINDS)}")
            if not isinstance(payload, str) or not payload or len(payload) > MAX_PAYLOAD:
                raise InvalidArgument(
                    "payload", f"the SDP or candidate, at most {MAX_PAYLOAD} characters"
                )
            request = pb.SendSignalRequest(call_id=call_id, kind=str(kind), payload=payload)
            await self._client.call(self._client.calls.SendSignal, request)
            return
        event = message.get("event")
        if event not in MEDIA_EVENTS:
            raise InvalidArgument("event", f"one of {', '.join(MEDIA_EVENTS)}")
        if event == "joined":
            self.owner = send
            log_event(log, "console_call_media_joined", call_id=call_id)
        else:
            self.owner = None
            await self._end(call_id, "the teller's media ended")

    async def page_gone(self, send: Send) -> None:
        """The page carrying the call's media closed: the call ends on both sides."""
        if self.owner is send and self.call_id:
            self.owner = None
            with contextlib.suppress(grpc.aio.AioRpcError):
                await self._end(self.call_id, "the console page closed")

    async def _end(self, call_id: str, reason: str) -> None:
        log_event(log, "console_call_hung_up", call_id=call_id, reason=reason)
        request = pb.EndCallRequest(call_id=call_id, reason=reason)
        await self._client.call(self._client.calls.EndCall, request)
