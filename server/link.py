"""TerminalLink: one bidirectional stream per terminal.

The terminal's identity is taken from its client certificate (mTLS). ``Register`` must come
first and name that same terminal; anything else is refused. With ``--insecure-loopback``
there is no certificate and the registration's own id is trusted (development only).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import grpc
from sqlalchemy import Engine

from branchline.common.logs import log_event
from branchline.server import fleet_registry as registry
from branchline.server.auth import TERMINAL, Authorizer
from branchline.server.convert import KIND_BY_PB, SERVICE_STATE_BY_PB, device_from_pb, timestamp
from branchline.v1 import terminal_link_pb2 as pb
from branchline.v1 import terminal_link_pb2_grpc as pb_grpc

log = logging.getLogger("branchline.server.link")

MAX_ID_LENGTH = 64
# Unsolicited messages queued for one terminal before the oldest are refused (a stuck stream).
PUSH_QUEUE_LIMIT = 1000

# A handler for one TerminalMessage body: (terminal id, message) -> the reply, or None.
MessageHandler = Callable[[str, pb.TerminalMessage], Awaitable[pb.ServerMessage | None]]
# Called once a terminal's registration is acknowledged: (terminal id, branch).
ConnectHook = Callable[[str, str], Awaitable[None]]


class PushRefused(Exception):
    """The terminal is not connected to this replica, or its push queue is full."""


def _now() -> datetime:
    return datetime.now(UTC)


def validate_register(message: pb.Register) -> str | None:
    """The first problem with a registration, naming the field; None when it is sound."""
    if not message.terminal_id:
        return "register.terminal_id: must not be empty"
    if len(message.terminal_id) > MAX_ID_LENGTH:
        return f"register.terminal_id: longer than {MAX_ID_LENGTH} characters"
    if not message.branch:
        return "register.branch: must not be empty"
    if message.kind not in KIND_BY_PB:
        return f"register.kind: unknown terminal kind {message.kind}"
    seen: set[str] = set()
    for i, device in enumerate(message.devices):
        if not device.name:
            return f"register.devices[{i}].name: must not be empty"
        if device.name in seen:
            return f"register.devices[{i}].name: device {device.name!r} listed twice"
        seen.add(device.name)
    return None


class TerminalLinkServicer(pb_grpc.TerminalLinkServicer):
    def __init__(
        self,
        engine: Engine,
        replica: str,
        heartbeat_interval: float,
        auth: Authorizer,
    ) -> None:
        self._engine = engine
        self._replica = replica
        self._heartbeat_interval = heartbeat_interval
        self._auth = auth
        # terminal id -> the task serving its live stream on this replica
        self._streams: dict[str, asyncio.Task[object]] = {}
        # terminal id -> messages for it that no request asked for (pushes)
        self._pushes: dict[str, asyncio.Queue[pb.ServerMessage]] = {}
        self._handlers: dict[str, MessageHandler] = {}
        self._connect_hooks: list[ConnectHook] = []

    def add_handler(self, body: str, handler: MessageHandler) -> None:
        """Let another component answer one TerminalMessage body (the oneof field's name)."""
        if body in self._handlers or body in BUILT_IN_BODIES:
            raise ValueError(f"a handler for {body!r} is already installed")
        self._handlers[body] = handler

    def on_connect(self, hook: ConnectHook) -> None:
        """Run ``hook`` after each registration, before the stream's other messages."""
        self._connect_hooks.append(hook)

    def connected_terminals(self) -> list[str]:
        return sorted(self._pushes)

    def push(self, terminal_id: str, message: pb.ServerMessage) -> None:
        """Queue an unsolicited message (ack_seq 0) for a terminal connected to this replica."""
        queue = self._pushes.get(terminal_id)
        if queue is None:
            raise PushRefused(f"terminal {terminal_id!r} is not connected to this server")
        try:
            queue.put_nowait(message)
        except asyncio.QueueFull:
            raise PushRefused(f"terminal {terminal_id!r} is not reading its stream") from None

    def broadcast(self, message: pb.ServerMessage) -> int:
        """Push to every connected terminal; returns how many it was queued for."""
        sent = 0
        for terminal_id in list(self._pushes):
            try:
                self.push(terminal_id, message)
                sent += 1
            except PushRefused as exc:
                log_event(
                    log, "push_dropped", logging.WARNING, terminal_id=terminal_id, why=str(exc)
                )
        return sent

    async def Connect(
        self, request_iterator: AsyncIterator[pb.TerminalMessage], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ServerMessage]:
        principal = await self._auth.require(context, TERMINAL, "TerminalLink.Connect")
        identity = principal.name if principal is not None else None
        try:
            first = await anext(aiter(request_iterator))
        except StopAsyncIteration:
            return
        if not first.HasField("register"):
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                "the first message on a TerminalLink stream must be register",
            )
        problem = validate_register(first.register)
        if problem:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
        terminal_id = first.register.terminal_id
        if identity is not None and identity != terminal_id:
            log_event(
                log, "register_refused", logging.WARNING, certificate=identity, claimed=terminal_id
            )
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"register.terminal_id: the client certificate is for terminal {identity!r}, "
                f"not {terminal_id!r}",
            )

        previous = self._streams.get(terminal_id)
        if previous is not None:
            # A terminal has one stream: a reconnect replaces a half-dead old one.
            log_event(log, "stream_replaced", logging.WARNING, terminal_id=terminal_id)
            previous.cancel()
        me = asyncio.current_task()
        assert me is not None
        self._streams[terminal_id] = me
        reg = first.register
        try:
            await asyncio.to_thread(
                registry.register_terminal,
                self._engine,
                terminal_id,
                reg.branch,
                KIND_BY_PB[reg.kind],
                reg.agent_version,
                [device_from_pb(d) for d in reg.devices],
                self._replica,
                _now(),
            )
            await asyncio.to_thread(
                registry.record_heartbeat,
                self._engine,
                terminal_id,
                SERVICE_STATE_BY_PB.get(reg.service_state, "out_of_service"),
                _now(),
            )
            log_event(
                log,
                "terminal_registered",
                terminal_id=terminal_id,
                branch=reg.branch,
                devices=len(reg.devices),
                peer=context.peer(),
            )
            yield pb.ServerMessage(
                ack_seq=first.seq,
                register_ack=pb.RegisterAck(
                    terminal_id=terminal_id,
                    heartbeat_interval=self._heartbeat_interval,
                    server_replica=self._replica,
                ),
            )
            outgoing: asyncio.Queue[pb.ServerMessage] = asyncio.Queue(PUSH_QUEUE_LIMIT)
            self._pushes[terminal_id] = outgoing
            for hook in self._connect_hooks:
                await hook(terminal_id, reg.branch)
            # Replies and pushes share one queue, so the stream yields them in order.
            reader = asyncio.create_task(
                self._read(terminal_id, request_iterator, context, outgoing)
            )
            try:
                while True:
                    getter = asyncio.ensure_future(outgoing.get())
                    done, _ = await asyncio.wait(
                        {getter, reader}, return_when=asyncio.FIRST_COMPLETED
                    )
                    if getter in done:
                        yield getter.result()
                        continue
                    getter.cancel()
                    while not outgoing.empty():
                        yield outgoing.get_nowait()
                    reader.result()  # re-raises an abort from a handler
                    break
            finally:
                reader.cancel()
        finally:
            if self._streams.get(terminal_id) is me:
                del self._streams[terminal_id]
                self._pushes.pop(terminal_id, None)
                await asyncio.to_thread(
                    registry.mark_disconnected, self._engine, terminal_id, self._replica, _now()
                )
                log_event(log, "terminal_disconnected", terminal_id=terminal_id)

    async def _read(
        self,
        terminal_id: str,
        request_iterator: AsyncIterator[pb.TerminalMessage],
        context: grpc.aio.ServicerContext,
        outgoing: asyncio.Queue[pb.ServerMessage],
    ) -> None:
        async for message in request_iterator:
            reply = await self._handle(terminal_id, message, context)
            if reply is not None:
                await outgoing.put(reply)

    async def _handle(
        self, terminal_id: str, message: pb.TerminalMessage, context: grpc.aio.ServicerContext
    ) -> pb.ServerMessage | None:
        body = message.WhichOneof("body")
        if body == "heartbeat":
            state = SERVICE_STATE_BY_PB.get(message.heartbeat.service_state)
            if state is None:
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "heartbeat.service_state: unknown service state",
                )
            await asyncio.to_thread(
                registry.record_heartbeat, self._engine, terminal_id, state, _now()
            )
            return pb.ServerMessage(
                ack_seq=message.seq, heartbeat_ack=pb.HeartbeatAck(server_time=timestamp(_now()))
            )
        if body == "device_status":
            device = message.device_status.device
            if not device.name:
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT, "device_status.device.name: must not be empty"
                )
            await asyncio.to_thread(
                registry.update_device, self._engine, terminal_id, device_from_pb(device), _now()
            )
            return pb.ServerMessage(ack_seq=message.seq, status_ack=pb.StatusAck())
        handler = self._handlers.get(body or "")
        if handler is not None:
            return await handler(terminal_id, message)
        if body == "register":
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION, "register: already registered on this stream"
            )
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "message body: empty or unknown")
        return None


BUILT_IN_BODIES = frozenset({"register", "heartbeat", "device_status"})


async def sweep_stale(engine: Engine, timeout: float) -> None:
    """Mark terminals silent past the heartbeat timeout offline, forever."""
    while True:
        await asyncio.sleep(max(timeout / 4, 0.2))
        try:
            stale = await asyncio.to_thread(registry.mark_stale_offline, engine, timeout, _now())
        except Exception:  # the database may be briefly unreachable; keep sweeping
            log.exception("heartbeat sweep failed")
            continue
        for terminal_id in stale:
            log_event(log, "terminal_heartbeat_timeout", logging.WARNING, terminal_id=terminal_id)
