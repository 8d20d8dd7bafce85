"""Tube transactions on the TerminalLink stream.

Terminal -> server: ``tube_open`` (50), ``tube_event`` (51), ``tube_query`` (52), each
answered with ``tube_reply`` (ack_seq = the message's seq). A bad message gets a refusal in
the reply (a stable code and a message naming the field), never an aborted stream. A
failure of the server itself (database down) is answered with code ``unavailable``, which
is NOT stored: the terminal sends the same message (same request_id) again later. So is a
saturated server's refusal, code ``server_busy`` with ``retry_after_ms``: the link's applier
(``server/applier.py``) had too many messages waiting to take this one. Opens and events are
applied in group-commit batches; each answer is sent once its batch's commit is durable.

Server -> terminal: ``tube_update`` (51, ack_seq 0) whenever someone other than the terminal
(the back office) changes one of its transactions. A push for a terminal connected to
another replica travels on the delivery bus (``server/delivery``); one for a terminal
connected nowhere waits there for its next registration. Pushes are a hint, never the only
way: the terminal polls with ``tube_query`` while it waits on the back office, and after
every reconnect. Every change also signals the bus's ``tube`` topic, which wakes the back
office's ``TubeDesk.Watch`` streams on every replica.
"""

from __future__ import annotations

import asyncio
import functools
import logging

from branchline.common.logs import log_event
from branchline.server.applier import ServerBusy
from branchline.server.delivery.bus import TOPIC_TUBE, LocalBus
from branchline.server.link import TerminalLinkServicer
from branchline.server.link_push import LinkPusher
from branchline.server.tube.service import TubeService
from branchline.v1 import terminal_link_pb2 as link_pb
from branchline.v1 import tube_pb2 as pb

log = logging.getLogger("branchline.server.tube.link")

BODIES = ("tube_open", "tube_event", "tube_query")


class TubePusher(LinkPusher):
    """Pushes ``tube_update`` to the transaction's terminal; safe to call from any thread."""

    def __init__(self, link: TerminalLinkServicer, bus: LocalBus | None = None) -> None:
        super().__init__(link, "tube", log)
        self._bus = bus

    def notify(self, txn: pb.TubeTransaction) -> None:
        if self._bus is not None:
            self._bus.signal_threadsafe(self._loop, TOPIC_TUBE)
        if txn.updated_by == f"terminal:{txn.terminal_id}":
            return  # the terminal's own change: it has the reply
        self.send(
            txn.terminal_id,
            link_pb.ServerMessage(tube_update=txn),
            txn_id=txn.txn_id,
            state=pb.TubeState.Name(txn.state),
        )


def _request_id(message: link_pb.TerminalMessage, body: str) -> str:
    if body == "tube_open":
        return message.tube_open.request_id
    if body == "tube_event":
        return message.tube_event.request_id
    return ""


def install_tube(
    link: TerminalLinkServicer, service: TubeService, bus: LocalBus | None = None
) -> TubePusher:
    """Answer the tube bodies on ``link`` and push the back office's changes through it."""
    pusher = TubePusher(link, bus)
    pusher.bind_running()
    service.add_listener(pusher.notify)

    async def handle(terminal_id: str, message: link_pb.TerminalMessage) -> link_pb.ServerMessage:
        pusher.bind(asyncio.get_running_loop())
        body = message.WhichOneof("body") or ""
        try:
            # Opens and events are applied by the link's applier: many terminals' messages in
            # one commit, each answer sent once that commit is durable.
            if body == "tube_open":
                reply = await link.applier.apply(
                    functools.partial(service.handle_open, terminal_id, message.tube_open)
                )
            elif body == "tube_event":
                reply = await link.applier.apply(
                    functools.partial(service.handle_event, terminal_id, message.tube_event)
                )
            else:
                reply = await asyncio.to_thread(
                    service.query, terminal_id, message.tube_query.txn_id
                )
        except ServerBusy as exc:  # saturated: not applied, not stored; send it again later
            log_event(log, "tube_busy", logging.INFO, terminal_id=terminal_id, body=body)
            reply = pb.TubeReply(
                request_id=_request_id(message, body)[:128],
                code=exc.reason,
                message=f"{body}: {exc.message}",
                retry_after_ms=int(exc.retry_after * 1000),
            )
        except Exception as exc:  # never abort the stream: the terminal retries this one
            log_event(
                log,
                "tube_failed",
                logging.ERROR,
                terminal_id=terminal_id,
                body=body,
                error=type(exc).__name__,
            )
            log.debug("tube message failed", exc_info=True)
            reply = pb.TubeReply(
                request_id=_request_id(message, body)[:128],
                code="unavailable",
                message=f"{body}: the server could not apply it just now; send it again",
            )
        return link_pb.ServerMessage(ack_seq=message.seq, tube_reply=reply)

    for body in BODIES:
        link.add_handler(body, handle)
    return pusher
