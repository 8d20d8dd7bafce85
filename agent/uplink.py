"""The terminal's one long-lived stream to the server (TerminalLink.Connect).

Registers with every device's current state, sends a heartbeat every interval and each
device status change as it happens, and reconnects with jittered exponential backoff.
Device changes are coalesced per device: after a reconnect the registration carries the
current state of every device, so nothing queued while disconnected needs replaying.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from branchline.agent.config import TerminalConfig
from branchline.agent.device_owner import DeviceSnapshot
from branchline.agent.service_state import ServiceState
from branchline.agent.wire import device_to_pb
from branchline.common.enum_maps import SERVICE_STATE_TO_PB, TERMINAL_KIND_TO_PB
from branchline.common.grpc_errors import describe
from branchline.common.logs import log_event
from branchline.v1 import terminal_link_pb2 as link_pb2
from branchline.v1 import terminal_link_pb2_grpc as link_grpc

log = logging.getLogger("branchline.agent.uplink")

BACKOFF_FIRST = 0.5
BACKOFF_MAX = 15.0
AGENT_VERSION = "0.1.0"


def open_channel(config: TerminalConfig) -> grpc.aio.Channel:
    options = [("grpc.keepalive_time_ms", 20_000), ("grpc.keepalive_timeout_ms", 10_000)]
    if config.tls is None:
        return grpc.aio.insecure_channel(config.server, options=options)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=config.tls.ca_file.read_bytes(),
        private_key=config.tls.key_file.read_bytes(),
        certificate_chain=config.tls.cert_file.read_bytes(),
    )
    return grpc.aio.secure_channel(config.server, credentials, options=options)


# Handles one unsolicited ServerMessage body (a push); runs as its own task.
PushHandler = Callable[[link_pb2.ServerMessage], Awaitable[None]]
# Runs after each successful registration (e.g. to resend what waited while disconnected).
ConnectedHook = Callable[[], Awaitable[None]]


class UplinkUnavailable(Exception):
    """The server cannot be asked right now (not connected, or the link dropped mid-request)."""


class Uplink:
    def __init__(
        self,
        config: TerminalConfig,
        devices: Callable[[], list[DeviceSnapshot]],
        service_state: Callable[[], ServiceState],
    ) -> None:
        self._config = config
        self._devices = devices
        self._service_state = service_state
        self._pending: dict[str, DeviceSnapshot] = {}
        self._state_dirty = False
        self._wake = asyncio.Event()
        self._seq = 0
        self._outgoing: list[link_pb2.TerminalMessage] = []
        self._waiting: dict[int, asyncio.Future[link_pb2.ServerMessage]] = {}
        self.connected = False
        self.last_error = ""
        # How the reconnect loop waits between attempts (a test records the delays).
        self.pause_before_retry: Callable[[float], Awaitable[None]] = asyncio.sleep
        self._push_handlers: dict[str, PushHandler] = {}
        self._connected_hooks: list[ConnectedHook] = []
        self._push_tasks: set[asyncio.Task[None]] = set()

    def on_push(self, body: str, handler: PushHandler) -> None:
        """Route unsolicited server messages with this body (the oneof field's name)."""
        if body in self._push_handlers:
            raise ValueError(f"a push handler for {body!r} is already installed")
        self._push_handlers[body] = handler

    def on_connected(self, hook: ConnectedHook) -> None:
        self._connected_hooks.append(hook)

    def send(self, **body: object) -> None:
        """Queue one message that needs no answer (e.g. a reply to a server push)."""
        if not self.connected:
            raise UplinkUnavailable(
                f"not connected to the server ({self.last_error or 'connecting'})"
            )
        self._outgoing.append(self._next(**body))
        self._wake.set()

    def device_changed(self, snapshot: DeviceSnapshot) -> None:
        self._pending[snapshot.name] = snapshot
        self._wake.set()

    def service_state_changed(self) -> None:
        self._state_dirty = True
        self._wake.set()

    async def request(self, timeout: float = 15.0, **body: object) -> link_pb2.ServerMessage:
        """Send one request message and wait for the server's answer to it."""
        if not self.connected:
            raise UplinkUnavailable(
                f"not connected to the server ({self.last_error or 'connecting'})"
            )
        message = self._next(**body)
        future: asyncio.Future[link_pb2.ServerMessage] = asyncio.get_running_loop().create_future()
        self._waiting[message.seq] = future
        self._outgoing.append(message)
        self._wake.set()
        try:
            # Not asyncio.wait_for: on 3.11 a cancel as the answer comes is dropped, and the
            # canceled caller (the outbox sender at shutdown) runs on.
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            raise UplinkUnavailable(f"no answer from the server within {timeout:.0f} s") from None
        finally:
            self._waiting.pop(message.seq, None)

    def _fail_waiting(self, reason: str) -> None:
        """Fail every request waiting on the stream that just ended and drop what it had
        not sent yet (device changes and state are re-sent with the next registration)."""
        self._outgoing.clear()
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(UplinkUnavailable(reason))

    def _next(self, **body: object) -> link_pb2.TerminalMessage:
        self._seq += 1
        return link_pb2.TerminalMessage(seq=self._seq, **body)  # type: ignore[arg-type]

    def _register_message(self) -> link_pb2.TerminalMessage:
        return self._next(
            register=link_pb2.Register(
                terminal_id=self._config.terminal_id,
                branch=self._config.branch,
                kind=TERMINAL_KIND_TO_PB[self._config.kind],
                agent_version=AGENT_VERSION,
                service_state=SERVICE_STATE_TO_PB[self._service_state()],
                devices=[device_to_pb(d) for d in self._devices()],
            )
        )

    def _heartbeat_message(self) -> link_pb2.TerminalMessage:
        sent = Timestamp()
        sent.GetCurrentTime()
        return self._next(
            heartbeat=link_pb2.Heartbeat(
                service_state=SERVICE_STATE_TO_PB[self._service_state()],
                sent_at=sent,
            )
        )

    async def run(self) -> None:
        backoff = BACKOFF_FIRST
        while True:
            try:
                await self._session()
                backoff = BACKOFF_FIRST
            except grpc.aio.AioRpcError as exc:
                # The status and the field the server's details name, e.g. a refused
                # registration: "INVALID_ARGUMENT (field register.terminal_id): ..."
                self.last_error = describe(exc)
                level = (
                    logging.ERROR
                    if exc.code()
                    in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED)
                    else logging.WARNING
                )
                log_event(
                    log, "uplink_failed", level, server=self._config.server, error=self.last_error
                )
            except (OSError, ValueError) as exc:
                self.last_error = str(exc)
                log_event(
                    log,
                    "uplink_failed",
                    logging.WARNING,
                    server=self._config.server,
                    error=self.last_error,
                )
            finally:
                if self.connected:
                    log_event(
                        log, "uplink_disconnected", logging.WARNING, server=self._config.server
                    )
                    # A link that was up starts over: the first retry comes soon, not after
                    # the backoff the attempts before this connection had grown to.
                    backoff = BACKOFF_FIRST
                self.connected = False
                # Answers to this stream's requests can never arrive now: fail them at once
                # rather than let each wait out its timeout, and resend nothing stale.
                self._fail_waiting(f"link lost ({self.last_error or 'stream closed'})")
            await self.pause_before_retry(backoff * random.uniform(0.5, 1.0))
            backoff = min(backoff * 2, BACKOFF_MAX)

    async def _session(self) -> None:
        async with open_channel(self._config) as channel:
            call = link_grpc.TerminalLinkStub(channel).Connect()
            self._pending.clear()
            self._state_dirty = False
            await call.write(self._register_message())
            replies = aiter(call)
            first = await anext(replies, None)
            if first is None or not first.HasField("register_ack"):
                raise ValueError("server closed the stream without acknowledging registration")
            self.connected = True
            self.last_error = ""
            log_event(
                log,
                "uplink_registered",
                server=self._config.server,
                replica=first.register_ack.server_replica,
            )
            reader = asyncio.create_task(self._drain(replies))
            for hook in self._connected_hooks:
                self._spawn(hook())
            try:
                await self._send_loop(call, reader)
            finally:
                reader.cancel()
                call.cancel()

    async def _drain(self, replies: AsyncIterator[link_pb2.ServerMessage]) -> None:
        async for reply in replies:
            if reply.ack_seq == 0:
                self._dispatch_push(reply)
                continue
            future = self._waiting.get(reply.ack_seq)
            if future is not None and not future.done():
                future.set_result(reply)

    def _dispatch_push(self, message: link_pb2.ServerMessage) -> None:
        body = message.WhichOneof("body") or ""
        handler = self._push_handlers.get(body)
        if handler is None:
            log_event(log, "push_ignored", logging.WARNING, body=body or "empty")
            return
        self._spawn(handler(message))

    def _spawn(self, work: Awaitable[None]) -> None:
        async def guarded() -> None:
            try:
                await work
            except Exception as exc:  # a handler's failure must not take the link down
                log_event(log, "push_handler_failed", logging.ERROR, error=repr(exc))

        task = asyncio.create_task(guarded())
        self._push_tasks.add(task)
        task.add_done_callback(self._push_tasks.discard)

    async def _send_loop(self, call: grpc.aio.StreamStreamCall, reader: asyncio.Task[None]) -> None:
        interval = self._config.heartbeat_interval
        loop = asyncio.get_running_loop()
        # On a fixed clock, whatever else is sent: the server's liveness check reads only
        # heartbeats, so a terminal busy with requests must not fall silent to it.
        next_heartbeat = loop.time() + interval
        while True:
            if reader.done():
                reader.result()  # re-raises the RPC error
                raise ValueError("server closed the stream")
            self._wake.clear()
            while self._outgoing:
                await call.write(self._outgoing.pop(0))
            for name in list(self._pending):
                snapshot = self._pending.pop(name)
                await call.write(
                    self._next(
                        device_status=link_pb2.DeviceStatusReport(device=device_to_pb(snapshot))
                    )
                )
            if self._state_dirty or loop.time() >= next_heartbeat:
                self._state_dirty = False
                await call.write(self._heartbeat_message())
                next_heartbeat = loop.time() + interval
            wake = asyncio.ensure_future(self._wake.wait())
            await asyncio.wait(
                {wake, reader},
                timeout=max(0.0, next_heartbeat - loop.time()),
                return_when=asyncio.FIRST_COMPLETED,
            )
            wake.cancel()
