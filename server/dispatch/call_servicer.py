"""Video-teller calls over gRPC: the tellers' ``Calls`` service, the terminals' TerminalLink
bodies (call_request, call_leave, call_signal, command_outcome, call_query) and the pusher
that keeps every connected terminal up to date.

The pusher reads the database (not in-process state): whichever replica or restart made a
change, the replica holding the terminal's stream pushes it — the call's state, queue
position and estimated wait whenever they change, the teller's signalling and device
commands. A terminal reconnecting gets its open call, pending commands and signals again
(the agent ignores ids it has already handled).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
from sqlalchemy import Engine

from branchline.common.errors import DomainError
from branchline.common.logs import log_event
from branchline.server import fleet_registry
from branchline.server.applier import Applier
from branchline.server.auth import TELLER, Authorizer
from branchline.server.delivery.bus import (
    TOPIC_CALLS,
    TOPIC_DISPATCH,
    LocalBus,
    mark,
    wait_or_sleep,
)
from branchline.server.dispatch import call_convert as convert
from branchline.server.dispatch.boundary import bound, identify, link_refusal, rpc
from branchline.server.dispatch.calls import CallService, CallView, Outcome
from branchline.server.dispatch.model import Actor
from branchline.server.dispatch.tasks.core import TERMINAL
from branchline.server.link import PushRefused, TerminalLinkServicer
from branchline.server.writes import apply_write
from branchline.v1 import calls_pb2 as pb
from branchline.v1 import calls_pb2_grpc as pb_grpc
from branchline.v1 import terminal_link_pb2 as link_pb2

log = logging.getLogger("branchline.server.calls")

PUSH_INTERVAL = 0.2
WATCH_POLL_SECONDS = 0.2
SERVICE_NAMES = (pb.DESCRIPTOR.services_by_name["Calls"].full_name,)


class CallsServicer(pb_grpc.CallsServicer):
    """Tellers: the queue, answering and ending calls, signalling, device commands."""

    def __init__(
        self,
        service: CallService,
        auth: Authorizer,
        bus: LocalBus | None = None,
        applier: Applier | None = None,
    ) -> None:
        self._service = service
        self._auth = auth
        # Writes join the TerminalLink's group-commit batches (server/writes.py).
        self._applier = applier
        # Tells every replica's pusher and watchers that a call changed (delivery bus).
        self._bus = bus

    def _changed(self) -> None:
        if self._bus is not None:
            self._bus.signal(TOPIC_CALLS)

    async def _teller(self, context: grpc.aio.ServicerContext, method: str) -> Actor:
        return await identify(self._auth, context, (TELLER,), f"Calls.{method}")

    @rpc
    async def ListQueue(
        self, request: pb.ListQueueRequest, context: grpc.aio.ServicerContext
    ) -> pb.CallList:
        actor = await self._teller(context, "ListQueue")
        views = await asyncio.to_thread(self._service.queue, actor)
        return pb.CallList(calls=[convert.call_to_pb(v) for v in views])

    @rpc
    async def CurrentCall(
        self, request: pb.CurrentCallRequest, context: grpc.aio.ServicerContext
    ) -> pb.Call:
        actor = await self._teller(context, "CurrentCall")
        return convert.call_to_pb(await asyncio.to_thread(self._service.current, actor))

    @rpc
    async def AnswerCall(
        self, request: pb.AnswerCallRequest, context: grpc.aio.ServicerContext
    ) -> pb.Call:
        actor = await self._teller(context, "AnswerCall")
        view = await apply_write(self._applier, self._service.answer, actor, request.call_id)
        log_event(log, "call_answered", call_id=view.call_id, teller=actor.id)
        self._changed()
        return convert.call_to_pb(view)

    @rpc
    async def EndCall(
        self, request: pb.EndCallRequest, context: grpc.aio.ServicerContext
    ) -> pb.Call:
        actor = await self._teller(context, "EndCall")
        view = await apply_write(
            self._applier, self._service.end, actor, request.call_id, request.reason
        )
        log_event(log, "call_ended", call_id=view.call_id, teller=actor.id)
        self._changed()
        return convert.call_to_pb(view)

    @rpc
    async def SendSignal(
        self, request: pb.SendSignalRequest, context: grpc.aio.ServicerContext
    ) -> pb.CallSignal:
        actor = await self._teller(context, "SendSignal")
        signal = await apply_write(
            self._applier,
            self._service.add_signal,
            actor,
            request.call_id,
            request.kind,
            request.payload,
        )
        self._changed()
        return convert.signal_to_pb(signal)

    @rpc
    async def WatchSignals(
        self, request: pb.WatchSignalsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.CallSignal]:
        actor = await self._teller(context, "WatchSignals")
        last = max(0, request.after_id)
        first = True
        while True:
            seen = mark(self._bus, TOPIC_CALLS)  # a signal stored while reading wakes at once
            signals = await asyncio.to_thread(
                self._service.signals_after,
                actor,
                request.call_id,
                last,
                check_access=first,
            )
            first = False
            for signal in signals:
                last = signal.signal_id
                yield convert.signal_to_pb(signal)
            if not signals:
                await wait_or_sleep(self._bus, TOPIC_CALLS, WATCH_POLL_SECONDS, seen)

    @rpc
    async def SendCommand(
        self, request: pb.SendCommandRequest, context: grpc.aio.ServicerContext
    ) -> pb.PeripheralCommand:
        actor = await self._teller(context, "SendCommand")
        command = await apply_write(
            self._applier,
            self._service.send_command,
            actor,
            request.call_id,
            request.kind,
            request.title,
            list(request.lines),
        )
        log_event(
            log,
            "device_command_sent",
            call_id=request.call_id,
            command_id=command.command_id,
            kind=command.kind,
            teller=actor.id,
        )
        self._changed()
        return convert.command_to_pb(command)

    @rpc
    async def WatchResults(
        self, request: pb.WatchResultsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.PeripheralCommand]:
        """Each command of the call (after ``after_id``) as soon as it has an outcome."""
        actor = await self._teller(context, "WatchResults")
        after = max(0, request.after_id)
        sent: set[int] = set()
        while True:
            commands = await asyncio.to_thread(
                self._service.commands_after, actor, request.call_id, after
            )
            fresh = [c for c in commands if c.completion is not None and c.command_id not in sent]
            for command in fresh:
                sent.add(command.command_id)
                yield convert.command_to_pb(command)
            # Everything up to the oldest still running is done: move the cursor past it.
            running = [c.command_id for c in commands if c.completion is None]
            done_ids = [c.command_id for c in commands if c.completion is not None]
            if done_ids:
                after = max(after, min(running) - 1 if running else max(done_ids))
                sent = {i for i in sent if i > after}
            if not fresh:
                await wait_or_sleep(self._bus, TOPIC_CALLS, WATCH_POLL_SECONDS)

    @rpc
    async def GetSignature(
        self, request: pb.GetSignatureRequest, context: grpc.aio.ServicerContext
    ) -> pb.Signature:
        actor = await self._teller(context, "GetSignature")
        stored = await asyncio.to_thread(
            self._service.signature_of, actor, request.call_id, request.command_id
        )
        return pb.Signature(
            call_id=stored.call_id,
            command_id=stored.command_id,
            sha256=stored.sha256,
            content_type=stored.content_type,
            png=stored.png,
        )


@dataclass
class _Pushed:
    """What one terminal's current stream has been sent."""

    view: CallView | None = None
    signal_id: int = 0
    commands: set[int] = field(default_factory=set)


class CallLink:
    """The terminals' side of calls on TerminalLink, and the pusher."""

    def __init__(
        self,
        service: CallService,
        link: TerminalLinkServicer,
        engine: Engine,
        bus: LocalBus | None = None,
    ) -> None:
        self._service = service
        self._link = link
        self._engine = engine
        self._bus = bus
        # Writes join the link's group-commit batches (server/writes.py).
        self._applier = getattr(link, "applier", None)
        self._pushed: dict[str, _Pushed] = {}
        link.add_handler("call_request", self._call_request)
        link.add_handler("call_leave", self._call_leave)
        link.add_handler("call_signal", self._call_signal)
        link.add_handler("command_outcome", self._command_outcome)
        link.add_handler("call_query", self._call_query)
        link.on_connect(self._connected)

    def _changed(self) -> None:
        if self._bus is not None:
            self._bus.signal(TOPIC_CALLS)

    async def _connected(self, terminal_id: str, branch: str) -> None:
        # A new stream: everything current is pushed again.
        self._pushed[terminal_id] = _Pushed()

    async def _call_request(
        self, terminal_id: str, message: link_pb2.TerminalMessage
    ) -> link_pb2.ServerMessage:
        body = message.call_request
        terminal = await asyncio.to_thread(fleet_registry.get_terminal, self._engine, terminal_id)
        branch = terminal.branch if terminal is not None else ""
        try:
            bound(body)
            view = await apply_write(
                self._applier,
                self._service.request_call,
                Actor(TERMINAL, terminal_id),
                branch,
                body.request_id,
                body.business_type,
                convert.MODE_BY_PB.get(body.mode, ""),
            )
        except DomainError as exc:
            return link_refusal(message, "call_request", exc)
        log_event(
            log,
            "call_requested",
            call_id=view.call_id,
            terminal_id=terminal_id,
            business_type=view.business_type,
            state=view.state,
            position=view.position,
        )
        self._changed()
        return link_pb2.ServerMessage(ack_seq=message.seq, call_update=convert.call_to_pb(view))

    async def _call_leave(
        self, terminal_id: str, message: link_pb2.TerminalMessage
    ) -> link_pb2.ServerMessage:
        body = message.call_leave
        try:
            bound(body)
            view = await apply_write(
                self._applier,
                self._service.leave,
                Actor(TERMINAL, terminal_id),
                body.call_id,
                body.reason,
            )
        except DomainError as exc:
            return link_refusal(message, "call_leave", exc)
        log_event(log, "call_left", call_id=view.call_id, terminal_id=terminal_id)
        self._changed()
        return link_pb2.ServerMessage(ack_seq=message.seq, call_update=convert.call_to_pb(view))

    async def _call_signal(
        self, terminal_id: str, message: link_pb2.TerminalMessage
    ) -> link_pb2.ServerMessage:
        body = message.call_signal
        try:
            bound(body)
            signal = await apply_write(
                self._applier,
                self._service.add_signal,
                Actor(TERMINAL, terminal_id),
                body.call_id,
                body.kind,
                body.payload,
            )
        except DomainError as exc:
            return link_refusal(message, "call_signal", exc)
        self._changed()
        return link_pb2.ServerMessage(
            ack_seq=message.seq, call_ack=pb.CallAck(call_id=signal.call_id, id=signal.signal_id)
        )

    async def _command_outcome(
        self, terminal_id: str, message: link_pb2.TerminalMessage
    ) -> link_pb2.ServerMessage:
        body = message.command_outcome
        outcome = Outcome(
            command_id=body.command_id,
            call_id=body.call_id,
            completion=body.completion,
            code=body.code,
            detail=body.detail,
            fields=dict(body.fields),
            pin_block=body.pin_block,
            ksn=body.ksn,
            pin_block_format=body.pin_block_format,
            pan=body.pan,
            signature_png=body.signature_png,
            signature_sha256=body.signature_sha256,
        )
        try:
            bound(body)
            command = await apply_write(
                self._applier, self._service.record_outcome, Actor(TERMINAL, terminal_id), outcome
            )
        except DomainError as exc:
            return link_refusal(message, "command_outcome", exc)
        self._changed()
        log_event(
            log,
            "device_command_done",
            call_id=command.call_id,
            command_id=command.command_id,
            kind=command.kind,
            completion=command.completion,
            code=command.code,
        )
        return link_pb2.ServerMessage(
            ack_seq=message.seq,
            call_ack=pb.CallAck(call_id=command.call_id, id=command.command_id),
        )

    async def _call_query(
        self, terminal_id: str, message: link_pb2.TerminalMessage
    ) -> link_pb2.ServerMessage:
        try:
            bound(message.call_query)
            views = await asyncio.to_thread(
                self._service.terminal_calls,
                Actor(TERMINAL, terminal_id),
                message.call_query.call_id,
            )
        except DomainError as exc:
            return link_refusal(message, "call_query", exc)
        return link_pb2.ServerMessage(
            ack_seq=message.seq, call_list=pb.CallList(calls=[convert.call_to_pb(v) for v in views])
        )

    # -- pushes ----------------------------------------------------------------------------

    async def run(self, interval: float = PUSH_INTERVAL) -> None:
        """Push what changed to every connected terminal, forever: at once when a call
        changed on any replica (the bus's ``calls`` topic), else every ``interval``."""
        seen = mark(self._bus, (TOPIC_CALLS, TOPIC_DISPATCH))
        while True:
            await wait_or_sleep(self._bus, (TOPIC_CALLS, TOPIC_DISPATCH), interval, seen)
            # Marked before reading: a change made while pushing is pushed next, at once.
            seen = mark(self._bus, (TOPIC_CALLS, TOPIC_DISPATCH))
            try:
                await self.push_once()
            except Exception:  # the database may be briefly unreachable; keep pushing
                log.exception("call push failed")

    async def push_once(self) -> None:
        connected = self._link.connected_terminals()
        for gone in set(self._pushed) - set(connected):
            del self._pushed[gone]
        if not connected:
            return
        views = await asyncio.to_thread(self._service.open_calls_of, connected)
        for terminal_id in connected:
            state = self._pushed.setdefault(terminal_id, _Pushed())
            view = views.get(terminal_id)
            if view is None and state.view is not None:
                # The call closed: tell the terminal how it ended.
                final = await asyncio.to_thread(self._service.last_call_of, terminal_id)
                if final is not None and final.call_id == state.view.call_id:
                    self._push(
                        terminal_id, link_pb2.ServerMessage(call_update=convert.call_to_pb(final))
                    )
                state.view = None
                state.commands.clear()
                continue
            if view is None:
                continue
            if _changed(state.view, view):
                self._push(
                    terminal_id, link_pb2.ServerMessage(call_update=convert.call_to_pb(view))
                )
            state.view = view
            if view.state in ("ringing", "active"):
                signals = await asyncio.to_thread(
                    self._service.terminal_signals, terminal_id, state.signal_id
                )
                for signal in signals:
                    self._push(
                        terminal_id,
                        link_pb2.ServerMessage(teller_signal=convert.signal_to_pb(signal)),
                    )
                    state.signal_id = signal.signal_id
            if view.state == "active":
                for command in await asyncio.to_thread(self._service.pending_commands, terminal_id):
                    if command.command_id in state.commands:
                        continue
                    self._push(
                        terminal_id,
                        link_pb2.ServerMessage(
                            peripheral_command=pb.CommandForTerminal(
                                command=convert.command_to_pb(command)
                            )
                        ),
                    )
                    state.commands.add(command.command_id)

    def _push(self, terminal_id: str, message: link_pb2.ServerMessage) -> None:
        try:
            self._link.push(terminal_id, message)
        except PushRefused as exc:
            log_event(
                log, "call_push_dropped", logging.WARNING, terminal_id=terminal_id, why=str(exc)
            )


def _changed(before: CallView | None, after: CallView) -> bool:
    if before is None:
        return True
    return (
        before.call_id,
        before.state,
        before.teller_id,
        before.position,
        before.estimated_wait_seconds,
    ) != (after.call_id, after.state, after.teller_id, after.position, after.estimated_wait_seconds)


async def sweep(service: CallService, interval: float, applier: Applier | None = None) -> None:
    """Ring free tellers for calls still queued (after anything that was missed), forever."""
    while True:
        await asyncio.sleep(interval)
        try:
            missed = await apply_write(applier, service.expire_ringing)
            matched = await apply_write(applier, service.match_queued)
        except Exception:
            log.exception("call sweep failed")
            continue
        for call_id in missed:
            log_event(log, "call_unanswered", logging.WARNING, call_id=call_id)
        if matched:
            log_event(log, "queued_calls_matched", count=matched)
