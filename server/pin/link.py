"""``pin_verify`` on the TerminalLink stream: PIN block -> verified or not (+ a session)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from branchline.common.logs import log_event
from branchline.server.ledger.pin_service import HsmFailure, PinRequestError, PinVerifier
from branchline.server.link import MessageHandler
from branchline.v1 import terminal_link_pb2 as pb

log = logging.getLogger("branchline.server.link")


def pin_verify_handler(verifier: PinVerifier | None) -> MessageHandler:
    """The handler for ``pin_verify``; without a verifier (no HSM) every request is refused
    as ``hsm_unavailable``."""

    async def handle(terminal_id: str, message: pb.TerminalMessage) -> pb.ServerMessage:
        def error(code: str, text: str) -> pb.ServerMessage:
            return pb.ServerMessage(
                ack_seq=message.seq, error=pb.RequestError(code=code, message=text)
            )

        if verifier is None:
            return error("hsm_unavailable", "this server has no HSM configured")
        try:
            result = await asyncio.to_thread(
                verifier.verify, terminal_id, message.pin_verify, datetime.now(UTC)
            )
        except PinRequestError as exc:
            return error(exc.code, exc.message)
        except HsmFailure as exc:
            log_event(log, "hsm_failed", logging.ERROR, terminal_id=terminal_id, error=str(exc))
            return error("hsm_unavailable", "the HSM could not verify the PIN; try again later")
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
