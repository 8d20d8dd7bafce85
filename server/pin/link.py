"""``pin_verify`` on the TerminalLink stream: PIN block -> verified or not (+ a session).

Refusals are raised as the one error model; the link answers them as a ``RequestError``
with the field as data (``pin_verify.pan``, ``pin_verify.ksn``, ...)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from branchline.common.errors import Unavailable
from branchline.common.logs import log_event
from branchline.server.applier import Applier
from branchline.server.ledger.pin_service import HsmFailure, PinVerifier
from branchline.server.link import MessageHandler
from branchline.v1 import terminal_link_pb2 as pb

log = logging.getLogger("branchline.server.link")


def pin_verify_handler(
    verifier: PinVerifier | None, applier: Applier | None = None
) -> MessageHandler:
    """The handler for ``pin_verify``; without a verifier (no HSM) every request is refused
    as ``hsm_unavailable``. The attempt is recorded through ``applier`` (the link's)."""

    async def handle(terminal_id: str, message: pb.TerminalMessage) -> pb.ServerMessage:
        if verifier is None:
            raise Unavailable("this server has no HSM configured", reason="hsm_unavailable")
        try:
            result = await verifier.verify_through(
                applier, terminal_id, message.pin_verify, datetime.now(UTC)
            )
        except HsmFailure as exc:
            # What failed is for the log; the terminal only learns to try again later.
            log_event(log, "hsm_failed", logging.ERROR, terminal_id=terminal_id, error=str(exc))
            raise Unavailable(
                "the HSM could not verify the PIN; try again later", reason="hsm_unavailable"
            ) from None
        log_event(
            log,
            "pin_verified",
            terminal_id=terminal_id,
            card=result.pan_masked,
            verified=result.verified,
            attempts_left=result.attempts_left,
            locked=result.locked,
        )
        return pb.ServerMessage(ack_seq=message.seq, pin_verify_result=result)

    return handle
