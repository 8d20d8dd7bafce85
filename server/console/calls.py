"""Video calls on a teller's console: the branch queue for the teller's skills, the call
ringing or active, answer and end, remote-peripheral commands and their results.

The server has no watch stream for the queue, so the console asks for it every second
(``ListQueue`` and ``CurrentCall``); a call's command results arrive over
``Calls.WatchResults``. A PIN result is shown as "received" only: the translated PIN block
never reaches the page. A signature result's PNG is fetched once (``Calls.GetSignature``),
kept only if it hashes to the SHA-256 the result recorded, and served to the page from
loopback at ``/signature/<command_id>`` (``web.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable
from typing import Any

import grpc

from branchline.common.errors import FailedPrecondition, InvalidArgument, check_text
from branchline.common.ice import IceServers
from branchline.server.console.call_media import CallMedia
from branchline.server.console.client import StaffClient
from branchline.server.console.i18n import business_name, format_time
from branchline.server.console.redact import mask_pan
from branchline.v1 import calls_pb2 as pb

log = logging.getLogger("branchline.console.calls")

ACTIONS = ("answer", "end", "command")
COMMAND_KINDS = ("read_card", "read_id", "pin", "print", "signature")
POLL_SECONDS = 1.0
NO_ICE = IceServers()
MAX_LINES = 20
# Result fields that may hold a card number or an ID number: masked again here.
PAN_FIELDS = frozenset({"pan", "pan_masked", "card"})


def _name(enum: Any, value: int, prefix: str) -> str:
    return str(enum.Name(value)).removeprefix(prefix).lower()


def call_view(call: pb.Call, lang: str) -> dict[str, Any]:
    return {
        "call_id": call.call_id,
        "terminal_id": call.terminal_id,
        "business_type": call.business_type,
        "business_name": business_name(lang, call.business_type),
        "mode": _name(pb.CallMode, call.mode, "CALL_MODE_"),
        "state": _name(pb.CallState, call.state, "CALL_STATE_"),
        "teller_id": call.teller_id,
        "position": call.position,
        "estimated_wait_seconds": call.estimated_wait_seconds,
        "created_at": format_time(call.created_at.ToDatetime())
        if call.HasField("created_at")
        else "",
    }


def signature_url(command_id: int) -> str:
    return f"/signature/{command_id}"


def command_view(command: pb.PeripheralCommand, signature_shown: bool = False) -> dict[str, Any]:
    fields = {k: mask_pan(v) if k in PAN_FIELDS else v for k, v in command.fields.items()}
    return {
        "command_id": command.command_id,
        "kind": command.kind,
        "title": command.title,
        "completion": command.completion,
        "code": command.code,
        "detail": command.detail,
        "fields": fields,
        "pin_received": bool(command.pin_block),
        "signature_sha256": command.signature_sha256,
        "signature_size": command.signature_size,
        "signature_url": signature_url(command.command_id) if signature_shown else "",
    }


class CallDesk:
    def __init__(
        self,
        client: StaffClient,
        changed: Callable[[], None],
        send_frame: Callable[[dict[str, Any]], None] = lambda frame: None,
        ice: IceServers = NO_ICE,
    ) -> None:
        self._client = client
        # The call's WebRTC signalling between the page and the server (call_media.py).
        self.media = CallMedia(client, ice, send_frame)
        self._changed = changed
        self.queue: list[pb.Call] = []
        self.current: pb.Call | None = None
        self.commands: dict[int, pb.PeripheralCommand] = {}
        self._results: asyncio.Task[None] | None = None
        self._following = ""
        # Verified signature images of the followed call, by command id.
        self.signatures: dict[int, bytes] = {}

    async def run(self, on_down: Callable[[], None]) -> None:
        """Poll the queue and the current call; follow the current call's results."""
        try:
            while True:
                try:
                    await self.refresh()
                except grpc.aio.AioRpcError as exc:
                    if exc.code() == grpc.StatusCode.UNAVAILABLE:
                        on_down()
                await asyncio.sleep(POLL_SECONDS)
        finally:
            await self._stop_results()
            await self.media.stop()

    async def refresh(self) -> None:
        listed = await self._client.call(self._client.calls.ListQueue, pb.ListQueueRequest())
        current: pb.Call | None
        try:
            current = await self._client.call(
                self._client.calls.CurrentCall, pb.CurrentCallRequest()
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise
            current = None
        if await self.media.ended_stale(current):
            current = None  # ended: the next poll shows what the teller has now
        changed = list(listed.calls) != self.queue or current != self.current
        self.queue, self.current = list(listed.calls), current
        await self._follow(current.call_id if current is not None else "")
        await self.media.follow(current)
        if changed:
            self._changed()

    async def _follow(self, call_id: str) -> None:
        if call_id == self._following:
            return
        await self._stop_results()
        self._following = call_id
        self.commands = {}
        self.signatures = {}
        if call_id:
            self._results = asyncio.ensure_future(self._watch_results(call_id))

    async def _stop_results(self) -> None:
        if self._results is not None:
            self._results.cancel()
            with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
                await self._results
            self._results = None

    async def _watch_results(self, call_id: str) -> None:
        request = pb.WatchResultsRequest(call_id=call_id)
        stream = self._client.stream(self._client.calls.WatchResults, request)
        try:
            async for command in stream:
                self.commands[command.command_id] = command
                if command.signature_sha256:
                    await self._fetch_signature(call_id, command)
                self._changed()
        finally:
            stream.cancel()

    async def _fetch_signature(self, call_id: str, command: pb.PeripheralCommand) -> None:
        """Keep the signature's PNG if it is the one the result recorded (else not shown)."""
        request = pb.GetSignatureRequest(call_id=call_id, command_id=command.command_id)
        try:
            stored = await self._client.call(self._client.calls.GetSignature, request)
        except grpc.aio.AioRpcError as exc:
            log.warning("signature of command %d not fetched: %s", command.command_id, exc.code())
            return
        digest = hashlib.sha256(stored.png).hexdigest()
        if digest != command.signature_sha256 or stored.sha256 != command.signature_sha256:
            log.warning("signature of command %d does not match its hash", command.command_id)
            return
        self.signatures[command.command_id] = stored.png

    def signature(self, command_id: int) -> bytes | None:
        """The verified PNG of a signature result of the current call."""
        return self.signatures.get(command_id)

    def snapshot(self, lang: str) -> dict[str, Any]:
        return {
            "queue": [call_view(c, lang) for c in self.queue],
            "current": call_view(self.current, lang) if self.current is not None else None,
            "commands": [
                command_view(c, i in self.signatures) for i, c in sorted(self.commands.items())
            ],
            "command_kinds": list(COMMAND_KINDS),
            "media": self.media.snapshot(),
        }

    async def handle(self, action: str, data: dict[str, Any]) -> None:
        calls = self._client.calls
        if action == "answer":
            call_id = check_text("call_id", str(data.get("call_id", "")), required=False)
            await self._client.call(calls.AnswerCall, pb.AnswerCallRequest(call_id=call_id))
        elif action == "end":
            current = self._current()
            reason = check_text("reason", str(data.get("reason", "")), max_len=200, required=False)
            await self._client.call(
                calls.EndCall, pb.EndCallRequest(call_id=current.call_id, reason=reason)
            )
        elif action == "command":
            current = self._current()
            kind = data.get("kind")
            if kind not in COMMAND_KINDS:
                raise InvalidArgument("kind", f"one of {', '.join(COMMAND_KINDS)}")
            title = check_text("title", str(data.get("title", "")), max_len=80, required=False)
            lines = [line for line in str(data.get("lines", "")).splitlines() if line.strip()]
            if len(lines) > MAX_LINES:
                raise InvalidArgument("lines", f"at most {MAX_LINES} lines")
            sent = await self._client.call(
                calls.SendCommand,
                pb.SendCommandRequest(
                    call_id=current.call_id, kind=str(kind), title=title, lines=lines
                ),
            )
            self.commands[sent.command_id] = sent
        await self.refresh()
        self._changed()

    def _current(self) -> pb.Call:
        if self.current is None or self.current.state != pb.CALL_STATE_ACTIVE:
            raise FailedPrecondition("call_id: you have no active call", field="call_id")
        return self.current
