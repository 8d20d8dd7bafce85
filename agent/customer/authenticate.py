"""Card + PIN: read the card, take the PIN on the PIN pad, have the bank's HSM verify it.

The agent handles only the PIN block (encrypted under the PIN pad's DUKPT key) and the
PAN; neither is logged (the redaction filter masks the PAN should it reach a log).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from branchline.agent.customer.session import AccountView, CustomerSession
from branchline.agent.uplink import UplinkUnavailable
from branchline.common.logs import log_event
from branchline.common.redaction import mask_pan
from branchline.drivers.base import Completion, DeviceError
from branchline.v1 import terminal_link_pb2 as link_pb2

if TYPE_CHECKING:
    from branchline.agent.daemon import Agent

log = logging.getLogger("branchline.agent.customer")


@dataclass(frozen=True)
class AuthOutcome:
    verified: bool = False
    attempts_left: int = 0
    locked: bool = False
    message: str = ""
    pan_masked: str = ""
    completion: Completion = Completion.SUCCESS
    code: str = ""
    session: CustomerSession | None = None
    field: str = ""  # the request field the server named when it refused


def _needs(agent: Agent, name: str) -> Any:
    owner = agent.owners.get(name)
    if owner is None:
        raise DeviceError(Completion.UNSUPPORTED, "no_device", f"this terminal has no {name}")
    return owner


async def read_card(agent: Agent, timeout: float) -> dict[str, Any]:
    reader = _needs(agent, "card_reader")
    await reader.submit("accept_card", {"timeout_s": timeout}, timeout=timeout + 10)
    try:
        data: dict[str, Any] = await reader.submit("read_chip")
    except DeviceError as chip_error:
        # Fallback to the magnetic stripe, as terminals do when the chip does not answer.
        log_event(log, "chip_fallback", logging.WARNING, reason=chip_error.code)
        data = await reader.submit("read_tracks")
    if not data.get("pan"):
        raise DeviceError(Completion.INVALID_DATA, "no_pan", "the card gave no card number")
    return data


# long: one customer sign-in in order (card, PIN, server check, eject), each step's failure ending it its own way
async def authenticate(
    agent: Agent,
    card_timeout: float,
    pin_timeout: float,
    eject_after: bool,
    on_card: Callable[[str], None] | None = None,
) -> AuthOutcome:
    """``on_card`` hears the masked PAN once the card is read (the kiosk shows PIN entry)."""
    async with agent.service.transaction():
        try:
            card = await read_card(agent, card_timeout)
            pan = str(card["pan"])
            if on_card is not None:
                on_card(mask_pan(pan))
            pad = _needs(agent, "pin_pad")
            pin = await pad.submit(
                "read_pin",
                # The PIN pad counts its entry timeout in whole seconds.
                {"pan": pan, "timeout_s": max(1, round(pin_timeout))},
                timeout=pin_timeout + 10,
            )
            request = link_pb2.PinVerifyRequest(
                request_id=f"pin-{uuid.uuid4()}",
                pan=pan,
                pin_block=bytes.fromhex(pin["pin_block"]),
                ksn=bytes.fromhex(pin["ksn"]),
                pin_block_format=int(pin["format"]),
            )
            reply = await agent.uplink.request(pin_verify=request)
        except DeviceError as exc:
            log_event(
                log,
                "authentication_ended",
                completion=exc.completion.value,
                code=exc.code,
                detail=exc.message,
            )
            return AuthOutcome(message=exc.message, completion=exc.completion, code=exc.code)
        except UplinkUnavailable as exc:
            return AuthOutcome(
                message=f"the bank cannot be reached: {exc}",
                completion=Completion.DEVICE_NOT_READY,
                code="server_unavailable",
            )
        finally:
            if eject_after and "card_reader" in agent.owners:
                try:
                    await agent.owners["card_reader"].submit("eject")
                except DeviceError as exc:
                    log_event(log, "eject_failed", logging.WARNING, code=exc.code)
        if reply.HasField("error"):
            return AuthOutcome(
                message=reply.error.message,
                completion=Completion.INVALID_DATA,
                code=reply.error.code,
                pan_masked=mask_pan(pan),
                field=reply.error.field,
            )
        result = reply.pin_verify_result
        log_event(
            log,
            "pin_result",
            card=result.pan_masked,
            verified=result.verified,
            attempts_left=result.attempts_left,
            locked=result.locked,
        )
        session = None
        if result.verified:
            session = agent.sessions.open(
                result.session_token,
                result.customer_id,
                result.pan_masked,
                tuple(
                    AccountView(a.account_id, a.kind, a.currency, a.balance, a.available)
                    for a in result.accounts
                ),
            )
        return AuthOutcome(
            verified=result.verified,
            attempts_left=result.attempts_left,
            locked=result.locked,
            message=result.message,
            pan_masked=result.pan_masked,
            session=session,
        )
