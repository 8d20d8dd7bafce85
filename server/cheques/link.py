"""The cheque-book sale on the TerminalLink stream.

Terminal -> server: ``cheque_start`` .. ``cheque_query`` (150-156), each answered with
``cheque_reply`` (ack_seq = the message's seq). A refusal is in the reply (kind, code,
message, field), never an aborted stream. A failure of the server itself (database down) is
answered with kind ``unavailable``, which is NOT stored: the terminal sends the same message
(same request_id) again later.

Server -> terminal: ``cheque_update`` (151, ack_seq 0) with the record of a purchase someone
other than its terminal changed (``ChequeCore.changed_by_others``): the desk loaded or
unloaded the terminal's stock (the offers of a purchase still choosing), unlocked the
purchaser (the face attempts left), or the sweep opened a stale incident (its id). A push is a
hint: the terminal reads its purchases with ``cheque_query`` after every reconnect.
"""

from __future__ import annotations

import asyncio
import logging

from branchline.common.errors import DomainError
from branchline.common.logs import log_event
from branchline.server.cheques import identify, order, settle
from branchline.server.cheques.core import ChequeCore, error_kind
from branchline.server.link import TerminalLinkServicer
from branchline.server.link_push import LinkPusher
from branchline.v1 import cheques_pb2 as pb
from branchline.v1 import terminal_link_pb2 as link_pb

log = logging.getLogger("branchline.server.cheques.link")

BODIES = (
    "cheque_start",
    "cheque_id_card",
    "cheque_face",
    "cheque_order",
    "cheque_leaves",
    "cheque_finish",
    "cheque_query",
)


def dispatch(
    core: ChequeCore, terminal_id: str, message: link_pb.TerminalMessage
) -> pb.ChequeReply:
    """Apply one cheque message (on a worker thread); refusals become replies."""
    body = message.WhichOneof("body") or ""
    inner = getattr(message, body)
    try:
        if body == "cheque_start":
            return identify.start(core, terminal_id, inner)
        if body == "cheque_id_card":
            return identify.id_card(core, terminal_id, inner)
        if body == "cheque_face":
            return identify.face(core, terminal_id, inner)
        if body == "cheque_order":
            return order.order(core, terminal_id, inner)
        if body == "cheque_leaves":
            return settle.leaves(core, terminal_id, inner)
        if body == "cheque_finish":
            return settle.finish(core, terminal_id, inner)
        return core.query(terminal_id, inner.purchase_id)
    except DomainError as exc:  # refused before anything was stored: deterministic
        return pb.ChequeReply(
            request_id=getattr(inner, "request_id", "")[:128],
            kind=error_kind(exc),
            code=exc.reason,
            message=exc.message[:500],
            field=exc.field,
        )


class ChequePusher(LinkPusher):
    """Pushes ``cheque_update`` to the purchase's terminal; safe to call from any thread."""

    def __init__(self, link: TerminalLinkServicer) -> None:
        super().__init__(link, "cheque", log)

    def notify(self, purchase: pb.ChequePurchase) -> None:
        self.send(
            purchase.terminal_id,
            link_pb.ServerMessage(cheque_update=purchase),
            purchase_id=purchase.purchase_id,
            state=pb.ChequeState.Name(purchase.state),
        )


def install_cheques(link: TerminalLinkServicer, core: ChequeCore) -> ChequePusher:
    """Answer the cheque bodies on ``link`` and push the changes others make through it."""
    pusher = ChequePusher(link)
    pusher.bind_running()
    core.add_pusher(pusher.notify)

    async def handle(terminal_id: str, message: link_pb.TerminalMessage) -> link_pb.ServerMessage:
        pusher.bind(asyncio.get_running_loop())
        body = message.WhichOneof("body") or ""
        try:
            reply = await asyncio.to_thread(dispatch, core, terminal_id, message)
        except Exception as exc:  # never abort the stream: the terminal retries this one
            log_event(
                log,
                "cheque_failed",
                logging.ERROR,
                terminal_id=terminal_id,
                body=body,
                error=type(exc).__name__,
            )
            log.debug("cheque message failed", exc_info=True)
            inner = getattr(message, body)
            reply = pb.ChequeReply(
                request_id=getattr(inner, "request_id", "")[:128],
                kind="unavailable",
                code="unavailable",
                message=f"{body}: the server could not apply it just now; send it again",
            )
        return link_pb.ServerMessage(ack_seq=message.seq, cheque_reply=reply)

    for body in BODIES:
        link.add_handler(body, handle)
    return pusher
