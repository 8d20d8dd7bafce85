"""The back office's video on the customer's screen over gRPC and TerminalLink: the desk's
``TubeDesk.SendDeskSignal`` / ``WatchDeskSignals``, the terminal's ``desk_signal`` body
(answered with the stored signal, or an ``error``), and the pusher that sends the desk's
signals to the terminal. The pusher and the desk's watch read the database, so any
replica's writes reach them; every signal stored wakes both through the delivery bus's
``desk`` topic, and their poll is the backstop (on PostgreSQL the bus's)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from branchline.common.errors import DomainError, check_text
from branchline.common.grpc_errors import refusals
from branchline.common.logs import log_event
from branchline.server.delivery.bus import TOPIC_DESK, LocalBus, wait_for_change
from branchline.server.link import PushRefused, TerminalLinkServicer
from branchline.server.tube import validate as v
from branchline.server.tube.desk_video import MAX_SDP, DeskSignalView
from branchline.server.tube.service import TubeService
from branchline.server.tube.servicer import TubeDeskServicer
from branchline.server.writes import apply_write
from branchline.v1 import terminal_link_pb2 as link_pb
from branchline.v1 import tube_pb2 as pb

log = logging.getLogger("branchline.server.tube.video")

PUSH_INTERVAL = 0.2
WATCH_POLL_SECONDS = 0.2


def signal_to_pb(signal: DeskSignalView) -> pb.DeskSignal:
    at = Timestamp()
    at.FromDatetime(signal.at)
    return pb.DeskSignal(
        signal_id=signal.signal_id,
        txn_id=signal.txn_id,
        sender=signal.sender,
        kind=signal.kind,
        payload=signal.payload,
        at=at,
    )


def _bounded(request: pb.DeskSignalRequest) -> tuple[str, str]:
    txn_id = check_text("txn_id", request.txn_id, max_len=v.MAX_TXN_ID, required=False)
    kind = check_text("kind", request.kind, max_len=16, required=False)
    return txn_id, kind


class TubeDeskVideoServicer(TubeDeskServicer):
    """TubeDesk with the back office's video signalling."""

    @refusals
    async def SendDeskSignal(
        self, request: pb.DeskSignalRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeskSignal:
        who = await self._caller(context, "SendDeskSignal")
        txn_id, kind = _bounded(request)
        signal = await self._write(
            self._service.add_desk_signal, who, txn_id, kind, request.payload[: MAX_SDP + 1]
        )
        return signal_to_pb(signal)

    @refusals
    async def WatchDeskSignals(
        self, request: pb.WatchDeskSignalsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.DeskSignal]:
        who = await self._caller(context, "WatchDeskSignals")
        txn_id = check_text("txn_id", request.txn_id, max_len=v.MAX_TXN_ID, required=False)
        last, first = max(0, request.after_id), True
        while True:
            signals = await asyncio.to_thread(
                self._service.desk_signals_after, who, txn_id, last, check_access=first
            )
            first = False
            for signal in signals:
                last = signal.signal_id
                yield signal_to_pb(signal)
            if not signals:
                await wait_for_change(self._bus, TOPIC_DESK, WATCH_POLL_SECONDS)


def install_desk_video(link: TerminalLinkServicer, service: TubeService) -> None:
    """Answer the terminals' ``desk_signal`` bodies on ``link``."""

    async def handle(terminal_id: str, message: link_pb.TerminalMessage) -> link_pb.ServerMessage:
        body = message.desk_signal
        try:
            txn_id, kind = _bounded(body)
            signal = await apply_write(
                link.applier,
                service.terminal_desk_signal,
                terminal_id,
                txn_id,
                kind,
                body.payload[: MAX_SDP + 1],
            )
        except DomainError as exc:
            error = link_pb.RequestError(code=exc.code, message=exc.message, field=exc.field)
            return link_pb.ServerMessage(ack_seq=message.seq, error=error)
        return link_pb.ServerMessage(ack_seq=message.seq, desk_signal=signal_to_pb(signal))

    link.add_handler("desk_signal", handle)


async def push_desk_signals(
    link: TerminalLinkServicer,
    service: TubeService,
    interval: float = PUSH_INTERVAL,
    bus: LocalBus | None = None,
) -> None:
    """Push the desk's signals to each connected terminal, forever (the agent ignores ids it
    has seen, so a reconnect pushing recent ones again is harmless)."""
    pushed: dict[str, int] = {}
    while True:
        await wait_for_change(bus, TOPIC_DESK, interval)
        connected = link.connected_terminals()
        for gone in set(pushed) - set(connected):
            del pushed[gone]
        if not connected:
            continue
        try:  # one query for every connected terminal, not a thread and a query each
            new = await asyncio.to_thread(
                service.desk_signals_for_terminals, {t: pushed.get(t, 0) for t in connected}
            )
        except Exception:  # the database may be briefly unreachable; keep pushing
            log.exception("desk video push failed")
            continue
        for terminal_id, signals in new.items():
            for signal in signals:
                try:
                    link.push(terminal_id, link_pb.ServerMessage(desk_signal=signal_to_pb(signal)))
                except PushRefused as exc:
                    log_event(log, "desk_push_dropped", logging.WARNING, why=str(exc))
                    break
                pushed[terminal_id] = signal.signal_id
