"""Card and PIN: insert the card, PIN on the pad (a dot per key), signed in or told why not;
and at the end, the card back to the customer (or retained, as the reader does).

Authentication is the agent's own (``customer.authenticate``): the kiosk hears the masked PAN
when the card is read and the digit counts the pad reports (``pin_keys``), nothing more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from branchline.agent.customer.authenticate import AuthOutcome, authenticate
from branchline.agent.kiosk.pin_keys import follow_keys
from branchline.agent.service_state import NotInService
from branchline.common.errors import FailedPrecondition
from branchline.common.logs import log_event
from branchline.drivers.base import Completion, DeviceError
from branchline.drivers.pin_pad.protocol import PIN_MAX

if TYPE_CHECKING:
    from branchline.agent.kiosk.session import KioskSession

log = logging.getLogger("branchline.agent.kiosk")

# How long the goodbye screen stays before attract.
GOODBYE_SECONDS = 3.0
# Device codes and what the customer is told on the auth_error screen.
AUTH_ERRORS = {
    "entry_timeout": "timeout",
    "server_unavailable": "bank_unavailable",
    "no_pan": "card_unreadable",
}


def start(session: KioskSession, service: str) -> None:
    """The customer chose ``service``, which needs them signed in: ask for the card."""
    session.chosen = service
    session.show("card", service=service)
    session.run(sign_in(session), "sign_in")


async def sign_in(session: KioskSession) -> None:
    agent = session.agent
    settings = session.settings

    def on_card(pan_masked: str) -> None:
        session.card_in = True
        session.show("pin", pan_masked=pan_masked, digits=0, max_digits=PIN_MAX)

    def on_count(count: int, kind: str) -> None:
        session.activity()
        if session.screen == "pin":
            session.update(digits=count)

    with contextlib.ExitStack() as stack:
        follower: asyncio.Task[None] | None = None
        pad = agent.owners.get("pin_pad")
        if pad is not None:
            queue = stack.enter_context(pad.spy.listen())
            follower = asyncio.ensure_future(follow_keys(queue, on_count))
        try:
            with session.device_operation():
                outcome = await authenticate(
                    agent, settings.card_seconds, settings.pin_seconds, False, on_card
                )
        except NotInService:
            session.show_attract()
            return
        finally:
            if follower is not None:
                follower.cancel()
    await after_sign_in(session, outcome)


async def after_sign_in(session: KioskSession, outcome: AuthOutcome) -> None:
    from branchline.agent.kiosk.flows import enter

    if outcome.verified and outcome.session is not None:
        session.customer = outcome.session
        chosen, session.chosen = session.chosen, ""
        log_event(log, "kiosk_signed_in", card=outcome.pan_masked, service=chosen)
        enter(session, chosen or "menu")
        return
    if outcome.completion is not Completion.SUCCESS or outcome.code:
        if outcome.code == "no_card_inserted" and not session.card_in:
            session.chosen = ""
            session.show_attract()
        elif outcome.code == "customer_canceled":
            await session.end("canceled")
        else:
            code = AUTH_ERRORS.get(outcome.code, "card_refused" if outcome.pan_masked else "device")
            session.show("auth_error", code=code)
        return
    session.show("pin_failed", attempts_left=outcome.attempts_left, locked=outcome.locked)


async def on_card(session: KioskSession, action: str, data: dict[str, Any]) -> None:
    if action != "cancel":
        raise FailedPrecondition(
            f"action: card takes cancel, not {action[:32]!r}", reason="wrong_screen"
        )
    session.cancel_operation()
    session.run(session.end("canceled"), "cancel")


async def on_pin(session: KioskSession, action: str, data: dict[str, Any]) -> None:
    if action != "cancel":
        raise FailedPrecondition(
            f"action: PIN entry takes cancel (clear is the pad's key), not {action[:32]!r}",
            reason="wrong_screen",
        )
    session.cancel_operation()
    session.run(session.end("canceled"), "cancel")


async def on_pin_failed(session: KioskSession, action: str, data: dict[str, Any]) -> None:
    if action == "retry":
        if session.data.get("locked"):
            raise FailedPrecondition("action: the card is locked; no retry", reason="card_locked")
        session.run(sign_in(session), "sign_in")
    elif action == "cancel":
        session.run(session.end("canceled"), "cancel")
    else:
        raise FailedPrecondition(
            f"action: takes retry or cancel, not {action[:32]!r}", reason="wrong_screen"
        )


async def on_ok(session: KioskSession, action: str, data: dict[str, Any]) -> None:
    """auth_error and card_retained: ``ok`` ends the session (the card back if inside)."""
    if action != "ok":
        raise FailedPrecondition(f"action: takes ok, not {action[:32]!r}", reason="wrong_screen")
    session.run(session.end("finished"), "ok")


def _take_seconds(session: KioskSession) -> float:
    owner = session.agent.owners.get("card_reader")
    options = getattr(getattr(owner, "config", None), "options", None)
    return float(getattr(options, "take_timeout", 20.0))


async def return_card(session: KioskSession, reason: str) -> None:
    """Eject the card and wait for the customer to take it; the reader retains it when not
    taken in time. Then the data is cleared and attract comes back."""
    session.show("take_card", seconds=round(_take_seconds(session)))
    retained = False
    owner = session.agent.owners.get("card_reader")
    if owner is not None:
        try:
            with session.device_operation():
                result = await owner.submit("eject")
            retained = isinstance(result, dict) and result.get("card") == "retained"
        except DeviceError as exc:
            # No card inside any more (taken during a fault) is the common case here.
            log_event(log, "kiosk_eject_failed", logging.WARNING, code=exc.code)
    session.card_in = False
    session.reset()
    if retained:
        log_event(log, "kiosk_card_retained", reason=reason)
        session.show("card_retained")
        return
    session.show("session_ended", reason=reason)
    await asyncio.sleep(GOODBYE_SECONDS)
    if session.screen == "session_ended":
        session.show_attract()
