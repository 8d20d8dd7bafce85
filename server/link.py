"""TerminalLink: one bidirectional stream per terminal.

The terminal's identity is taken from its client certificate (mTLS). ``Register`` must come
first and name that same terminal; anything else is refused. With ``--insecure-loopback``
there is no certificate and the registration's own id is trusted (development only).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import grpc
from sqlalchemy import Engine

from branchline.common.enum_maps import SERVICE_STATE_FROM_PB, TERMINAL_KIND_FROM_PB
from branchline.common.errors import (
    MAX_ID,
    MAX_NAME,
    MAX_TEXT,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
    check_text,
    echo,
)
from branchline.common.grpc_errors import refusals
from branchline.common.logs import log_event
from branchline.server import fleet_registry as registry
from branchline.server.applier import Applier
from branchline.server.auth import TERMINAL, Authorizer
from branchline.server.convert import device_from_pb, timestamp
from branchline.server.liveness import Liveness
from branchline.server.liveness import flush as flush_liveness
from branchline.v1 import common_pb2
from branchline.v1 import terminal_link_pb2 as pb
from branchline.v1 import terminal_link_pb2_grpc as pb_grpc

log = logging.getLogger("branchline.server.link")

# What one registration may list: devices, and facts or capabilities per device.
MAX_DEVICES = 32
MAX_DEVICE_ENTRIES = 64
# Unsolicited messages queued for one terminal before the oldest are refused (a stuck stream).
PUSH_QUEUE_LIMIT = 1000

# A handler for one TerminalMessage body: (terminal id, message) -> the reply, or None.
MessageHandler = Callable[[str, pb.TerminalMessage], Awaitable[pb.ServerMessage | None]]
# Called once a terminal's registration is acknowledged: (terminal id, branch).
ConnectHook = Callable[[str, str], Awaitable[None]]
# Told of every message handled: (body, seconds it took, the refusal's code or None).
MessageObserver = Callable[[str, float, str | None], None]


class PushRefused(Exception):
    """The terminal is not connected to this replica, or its push queue is full."""


def _now() -> datetime:
    return datetime.now(UTC)


def validate_device(path: str, device: common_pb2.Device) -> None:
    """Raise InvalidArgument naming the first unsound field of a device report."""
    check_text(f"{path}.name", device.name, max_len=MAX_NAME)
    check_text(f"{path}.driver", device.driver, max_len=MAX_NAME, required=False)
    check_text(f"{path}.detail", device.detail, max_len=MAX_TEXT, required=False)
    for kind, entries in (("facts", device.facts), ("capabilities", device.capabilities)):
        if len(entries) > MAX_DEVICE_ENTRIES:
            raise InvalidArgument(
                f"{path}.{kind}", f"{len(entries)} entries, at most {MAX_DEVICE_ENTRIES} allowed"
            )
        for key, value in entries.items():
            check_text(f"{path}.{kind}", key, max_len=MAX_NAME)
            check_text(f"{path}.{kind}[{key}]", value, max_len=MAX_TEXT, required=False)


def validate_register(message: pb.Register) -> None:
    """Raise InvalidArgument naming the first unsound field of a registration."""
    check_text("register.terminal_id", message.terminal_id, max_len=MAX_ID)
    check_text("register.branch", message.branch, max_len=MAX_ID)
    check_text("register.agent_version", message.agent_version, max_len=MAX_NAME, required=False)
    if message.kind not in TERMINAL_KIND_FROM_PB:
        raise InvalidArgument("register.kind", f"unknown terminal kind {message.kind}")
    if len(message.devices) > MAX_DEVICES:
        raise InvalidArgument(
            "register.devices", f"{len(message.devices)} devices, at most {MAX_DEVICES} allowed"
        )
    seen: set[str] = set()
    for i, device in enumerate(message.devices):
        validate_device(f"register.devices[{i}]", device)
        if device.name in seen:
            raise InvalidArgument(
                f"register.devices[{i}].name", f"device {echo(device.name)} listed twice"
            )
        seen.add(device.name)


def check_registration(first: pb.TerminalMessage, identity: str | None) -> None:
    """The stream's first message must be a sound registration of the terminal the client
    certificate names (``identity``; None without TLS, development only)."""
    if not first.HasField("register"):
        raise FailedPrecondition(
            "the first message on a TerminalLink stream must be register",
            field="register",
            reason="register_first",
        )
    validate_register(first.register)
    terminal_id = first.register.terminal_id
    if identity is not None and identity != terminal_id:
        log_event(
            log, "register_refused", logging.WARNING, certificate=identity, claimed=terminal_id
        )
        raise PermissionDenied(
            f"register.terminal_id: the client certificate is for terminal {identity!r}, "
            f"not {echo(terminal_id)}",
            rule="certificate_names_the_terminal",
            field="register.terminal_id",
        )


def request_error(seq: int, exc: DomainError) -> pb.ServerMessage:
    """A refused TerminalLink request as its reply: the code, the message and the field as
    data. A malformed request's code is ``invalid_argument`` whatever its finer reason (the
    field says what was wrong); any other refusal's code is its stable reason. A saturated
    server's refusal (``server_busy``) says how long to wait before sending it again."""
    code = "invalid_argument" if isinstance(exc, InvalidArgument) else exc.reason
    retry_after = getattr(exc, "retry_after", 0.0)
    return pb.ServerMessage(
        ack_seq=seq,
        error=pb.RequestError(
            code=code,
            message=exc.message,
            field=exc.field,
            retry_after_ms=int(retry_after * 1000),
        ),
    )


class TerminalLinkServicer(pb_grpc.TerminalLinkServicer):
    def __init__(
        self,
        engine: Engine,
        replica: str,
        heartbeat_interval: float,
        auth: Authorizer,
        applier: Applier | None = None,
    ) -> None:
        self._engine = engine
        # Every write of the request path goes through it: group commit, backpressure.
        self.applier = applier if applier is not None else Applier(engine)
        # Who was heard from when, in memory; flushed to the registry by the sweep.
        self.liveness = Liveness()
        self._replica = replica
        self._heartbeat_interval = heartbeat_interval
        self._auth = auth
        # terminal id -> the task serving its live stream on this replica
        self._streams: dict[str, asyncio.Task[object]] = {}
        # terminal id -> messages for it that no request asked for (pushes)
        self._pushes: dict[str, asyncio.Queue[pb.ServerMessage]] = {}
        self._handlers: dict[str, MessageHandler] = {}
        self._connect_hooks: list[ConnectHook] = []
        self._observers: list[MessageObserver] = []
        # Carries pushes for terminals whose stream is on another replica (delivery).
        self._bus: Any = None

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def replica(self) -> str:
        """This replica's name (``terminals.connected_replica`` of the streams it holds)."""
        return self._replica

    def add_handler(self, body: str, handler: MessageHandler) -> None:
        """Let another component answer one TerminalMessage body (the oneof field's name)."""
        if body in self._handlers or body in BUILT_IN_BODIES:
            raise ValueError(f"a handler for {body!r} is already installed")
        self._handlers[body] = handler

    def on_connect(self, hook: ConnectHook) -> None:
        """Run ``hook`` after each registration, before the stream's other messages."""
        self._connect_hooks.append(hook)

    def observe_messages(self, observer: MessageObserver) -> None:
        """Tell ``observer`` of each message handled (metrics); it must be quick."""
        self._observers.append(observer)

    def connected_terminals(self) -> list[str]:
        return sorted(self._pushes)

    def attach_bus(self, bus: Any) -> None:
        """Hand pushes for terminals not connected here to ``bus`` (server/delivery), which
        queues on this replica's streams what other replicas send (``deliver_local``)."""
        self._bus = bus
        bus.attach(self.deliver_local, self._pushes.__contains__, self.connected_terminals)

    def push(self, terminal_id: str, message: pb.ServerMessage) -> None:
        """Queue an unsolicited message (ack_seq 0) for a terminal connected to this replica
        (what a pusher driven by this replica's own streams uses: calls, pairing, rates)."""
        queue = self._pushes.get(terminal_id)
        if queue is None:
            raise PushRefused(f"terminal {terminal_id!r} is not connected to this server")
        try:
            queue.put_nowait(message)
        except asyncio.QueueFull:
            raise PushRefused(f"terminal {terminal_id!r} is not reading its stream") from None

    def push_anywhere(self, terminal_id: str, message: pb.ServerMessage) -> None:
        """Queue a push for a terminal wherever its stream is: here, or through the delivery
        bus on the replica holding it (or, connected nowhere, at its next registration).
        For changes made on behalf of someone else, e.g. the back office's tube change."""
        if terminal_id not in self._pushes and self._bus is not None:
            if self._bus.send(terminal_id, message):
                return
        self.push(terminal_id, message)

    def deliver_local(self, terminal_id: str, message: pb.ServerMessage) -> bool:
        """Queue ``message`` on the terminal's stream here; False when it is not here (or
        not reading)."""
        queue = self._pushes.get(terminal_id)
        if queue is None:
            return False
        try:
            queue.put_nowait(message)
        except asyncio.QueueFull:
            return False
        return True

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

    # The stream ends with a refusal's status and details when registration or a built-in
    # message is unsound; capability handlers' refusals become RequestError replies instead.
    @refusals
    async def Connect(
        self, request_iterator: AsyncIterator[pb.TerminalMessage], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ServerMessage]:
        principal = await self._auth.require(context, TERMINAL, "TerminalLink.Connect")
        identity = principal.name if principal is not None else None
        try:
            first = await anext(aiter(request_iterator))
        except StopAsyncIteration:
            return
        check_registration(first, identity)
        terminal_id = first.register.terminal_id
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
            await self.applier.apply(lambda: self._record_registration(reg), priority=True)
            self.liveness.seen(terminal_id)
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
            # aclosing: the reader task ends with this stream, not when the GC gets to it.
            async with contextlib.aclosing(
                self._serve(terminal_id, request_iterator, outgoing)
            ) as replies:
                async for reply in replies:
                    yield reply
        finally:
            if self._streams.get(terminal_id) is me:
                del self._streams[terminal_id]
                self._pushes.pop(terminal_id, None)
                await self._disconnected(terminal_id)

    async def _disconnected(self, terminal_id: str) -> None:
        self.liveness.forget(terminal_id)
        at = _now()
        await self.applier.apply(
            lambda: registry.mark_disconnected(self._engine, terminal_id, self._replica, at),
            priority=True,
        )
        log_event(log, "terminal_disconnected", terminal_id=terminal_id)

    def _record_registration(self, reg: pb.Register) -> None:
        registry.register_terminal(
            self._engine,
            reg.terminal_id,
            reg.branch,
            TERMINAL_KIND_FROM_PB[reg.kind],
            reg.agent_version,
            [device_from_pb(d) for d in reg.devices],
            self._replica,
            _now(),
        )
        registry.record_heartbeat(
            self._engine,
            reg.terminal_id,
            SERVICE_STATE_FROM_PB.get(reg.service_state, "out_of_service"),
            _now(),
        )

    async def _serve(
        self,
        terminal_id: str,
        request_iterator: AsyncIterator[pb.TerminalMessage],
        outgoing: asyncio.Queue[pb.ServerMessage],
    ) -> AsyncGenerator[pb.ServerMessage, None]:
        """Replies and pushes share one queue, so the stream yields them in order. The
        reader's end is queued behind its last reply (``_END``): one plain ``get`` a message,
        not a task and an ``asyncio.wait`` each (measured on the request path)."""
        reader = asyncio.create_task(self._read(terminal_id, request_iterator, outgoing))
        ended = functools.partial(_queue_end, outgoing)
        reader.add_done_callback(ended)
        try:
            while True:
                reply = await outgoing.get()
                if reply is _END:
                    reader.result()  # re-raises a refusal of a built-in message
                    return
                yield reply
        finally:
            reader.remove_done_callback(ended)
            reader.cancel()

    async def _read(
        self,
        terminal_id: str,
        request_iterator: AsyncIterator[pb.TerminalMessage],
        outgoing: asyncio.Queue[pb.ServerMessage],
    ) -> None:
        async for message in request_iterator:
            started = time.perf_counter()
            # Alive from receipt on, however long the message waits to be applied.
            self.liveness.begin(terminal_id)
            try:
                reply = await self._handle(terminal_id, message)
            finally:
                self.liveness.end(terminal_id)
            if self._observers:
                refused = (
                    reply.error.code if reply is not None and reply.HasField("error") else None
                )
                elapsed = time.perf_counter() - started
                for observe in self._observers:
                    observe(message.WhichOneof("body") or "", elapsed, refused)
            if reply is not None:
                await outgoing.put(reply)

    async def _handle(
        self, terminal_id: str, message: pb.TerminalMessage
    ) -> pb.ServerMessage | None:
        body = message.WhichOneof("body")
        if body == "heartbeat":
            state = SERVICE_STATE_FROM_PB.get(message.heartbeat.service_state)
            if state is None:
                raise InvalidArgument(
                    "heartbeat.service_state",
                    f"unknown service state {message.heartbeat.service_state}",
                )
            # Remembered, answered at once; the sweep writes it to the registry in batches.
            self.liveness.heartbeat(terminal_id, state)
            return pb.ServerMessage(
                ack_seq=message.seq, heartbeat_ack=pb.HeartbeatAck(server_time=timestamp(_now()))
            )
        if body == "device_status":
            device = message.device_status.device
            validate_device("device_status.device", device)
            record, at = device_from_pb(device), _now()
            await self.applier.apply(
                lambda: registry.update_device(self._engine, terminal_id, record, at),
                priority=True,
            )
            return pb.ServerMessage(ack_seq=message.seq, status_ack=pb.StatusAck())
        handler = self._handlers.get(body or "")
        if handler is not None:
            try:
                return await handler(terminal_id, message)
            except DomainError as exc:
                # A refused request is answered, never an aborted stream.
                log_event(
                    log, "request_refused", terminal_id=terminal_id, body=body, code=exc.reason
                )
                return request_error(message.seq, exc)
        if body == "register":
            raise FailedPrecondition(
                "register: already registered on this stream",
                field="register",
                reason="already_registered",
            )
        raise InvalidArgument("body", "empty or unknown message body")


# Queued after a stream's last reply when its reader ends (compared by identity).
_END = pb.ServerMessage()


def _queue_end(outgoing: asyncio.Queue[pb.ServerMessage], _reader: object) -> None:
    try:
        outgoing.put_nowait(_END)
    except asyncio.QueueFull:  # pushes fill it: room comes as the stream sends them
        asyncio.ensure_future(outgoing.put(_END))


BUILT_IN_BODIES = frozenset({"register", "heartbeat", "device_status"})


# How often liveness noted in memory is written to the registry (at most).
LIVENESS_FLUSH_SECONDS = 1.0


async def sweep_stale(link: TerminalLinkServicer, timeout: float) -> None:
    """Forever: write the liveness noted in memory to the registry, and (every quarter of
    the timeout) mark offline the terminals silent past the heartbeat timeout — never one
    this replica has heard from within it or holds a message of."""
    engine, liveness = link.engine, link.liveness
    every = max(min(LIVENESS_FLUSH_SECONDS, timeout / 4), 0.2)
    sweep_every = max(timeout / 4, 0.2)
    next_sweep = time.monotonic() + sweep_every
    while True:
        await asyncio.sleep(every)
        states, touched, at = liveness.take_changes()
        try:
            if states or touched:
                await link.applier.apply(
                    functools.partial(flush_liveness, engine, states, touched, at), priority=True
                )
        except Exception:  # the database may be briefly unreachable; keep sweeping
            liveness.restore(states, touched)
            log.exception("liveness flush failed")
            continue
        if time.monotonic() < next_sweep:
            continue
        next_sweep = time.monotonic() + sweep_every
        alive = liveness.alive(timeout)
        now = _now()
        try:
            stale = await link.applier.apply(
                functools.partial(
                    registry.mark_stale_offline, engine, timeout, now, alive, link.replica
                ),
                priority=True,
            )
        except Exception:  # the database may be briefly unreachable; keep sweeping
            log.exception("heartbeat sweep failed")
            continue
        for terminal_id in stale:
            log_event(log, "terminal_heartbeat_timeout", logging.WARNING, terminal_id=terminal_id)
