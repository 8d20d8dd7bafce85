"""Buying a company cheque book on screen (issue 15): choose the method, then follow the
purchase engine (agent/cheques/) through ID card, face, order, printing and taking the book.

Screens: ``cheque_method`` (card + PIN, or account number + purchase code; once signed in,
the account to draw on), ``cheque_code`` (the purchase-code form) and ``cheque`` (the
purchase: its ``view`` from agent/cheques/customer.py, with ``code_key`` naming the rule of
the last refusal in the customer's language). The engine owns the purchase; this module
passes on the customer's steps and shows the stage.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from branchline.agent.cheques import customer
from branchline.agent.cheques import machine as m
from branchline.agent.cheques.engine import ChequeRefused, Live
from branchline.agent.kiosk.flows import card_pin, journaled, menu
from branchline.agent.kiosk.flows.tube import record_request
from branchline.common.errors import (
    DomainError,
    FailedPrecondition,
    InvalidArgument,
)

if TYPE_CHECKING:
    from branchline.agent.kiosk.session import KioskSession

SERVICE = "cheque"


def refusal(exc: ChequeRefused) -> DomainError:
    """The engine's refusal in the project's error model (the page names the field)."""
    return journaled.refusal(exc, exc.field)


def code_key(lang: str, code: str) -> str:
    return journaled.code_key(lang, "cheque", code)


def show(session: KioskSession) -> None:
    """The service's first screen: the method (or, signed in by card, the account)."""
    signed_in = session.customer is not None
    accounts = (
        [menu.account_json(session.lang, a) for a in session.customer.accounts]
        if session.customer is not None
        else []
    )
    session.show("cheque_method", signed_in=signed_in, accounts=accounts)


def purchase_data(session: KioskSession, live: Live) -> dict[str, Any]:
    from branchline.agent.kiosk.flows import phone_cheque

    view = customer.view(session.agent.cheques, live)
    # A cheque book ordered on the phone: its choice pre-filled on the order form.
    prefill = phone_cheque.prefill(session, view.get("offers", []))
    return {
        **view,
        "code_key": code_key(session.lang, view["code"]),
        "prefill": prefill,
        # The kiosk camera records the purchase from its first screen until it ends.
        "record": None if live.finished else record_request(live.purchase_id, "cheque"),
    }


def follow(session: KioskSession, live: Live) -> None:
    session.scratch["purchase_id"] = live.purchase_id
    journaled.follow(session, live, "cheque", purchase_data)


def _current(session: KioskSession) -> Live | None:
    purchase_id = session.scratch.get("purchase_id")
    return session.agent.cheques.live.get(purchase_id) if purchase_id else None


def relabel(session: KioskSession) -> None:
    live = _current(session)
    if live is not None:
        session.update(**purchase_data(session, live))


def relabel_method(session: KioskSession) -> None:
    if session.screen == "cheque_method":
        show(session)


async def _start(session: KioskSession, work: Any) -> None:
    try:
        live = await work
    except ChequeRefused as exc:
        raise refusal(exc) from None
    follow(session, live)
    await asyncio.sleep(0)


async def on_method(session: KioskSession, action: str, data: dict[str, Any]) -> None:
    engine = session.agent.cheques
    if action == "back":
        session.home()
    elif action == "method":
        method = data.get("method")
        if method == "code":
            session.show("cheque_code", busy=False)
        elif method == "card":
            if session.customer is None:
                card_pin.start(session, SERVICE)
            else:
                show(session)
        else:
            raise InvalidArgument("method", "must be card or code", reason="unknown_method")
    elif action == "start" and session.customer is not None:
        account_id = data.get("account_id")
        work = customer.start_card(
            engine, session.customer, account_id if isinstance(account_id, str) else ""
        )
        session.spawn(_start(session, work), "cheque_start", action)
    else:
        raise FailedPrecondition(
            f"action: {action[:32]!r} is not taken on this screen", reason="wrong_screen"
        )


async def on_code(session: KioskSession, action: str, data: dict[str, Any]) -> None:
    if action == "back":
        show(session)
        return
    if action != "submit":
        raise FailedPrecondition(
            f"action: the purchase-code form takes submit or back, not {action[:32]!r}",
            reason="wrong_screen",
        )
    account, code = data.get("account_number"), data.get("purchase_code")
    work = customer.start_code(
        session.agent.cheques,
        account if isinstance(account, str) else "",
        code if isinstance(code, str) else "",
    )
    session.update(busy=True)
    try:
        await _start(session, work)
    finally:
        if session.screen == "cheque_code":
            session.update(busy=False)


STEPS = {
    "read_id": (m.AWAITING_ID, customer.read_id),
    "capture": (m.AWAITING_FACE, customer.capture_face),
    "cancel": (None, customer.cancel),
}


async def _step(session: KioskSession, work: Any) -> None:
    try:
        await work
    except ChequeRefused as exc:
        raise refusal(exc) from None


async def on_action(session: KioskSession, action: str, data: dict[str, Any]) -> None:
    live = _current(session)
    if live is None:
        raise FailedPrecondition("purchase_id: no purchase on screen", reason="no_purchase")
    engine = session.agent.cheques
    if live.finished:
        if action != "done":
            raise FailedPrecondition(
                f"action: the purchase has ended; done, not {action[:32]!r}", reason="wrong_stage"
            )
        session.scratch.pop("purchase_id", None)
        if session.customer is not None:
            session.home()
        else:
            session.run(session.end("finished"), "done")
        return
    if action == "order":
        lines = data.get("lines")
        session.spawn(_step(session, customer.order(engine, live, lines)), "order", action)
    elif action in STEPS:
        _, step = STEPS[action]
        session.spawn(_step(session, step(engine, live)), action, action)
    else:
        raise FailedPrecondition(
            f"action: {action[:32]!r} is not taken at stage {live.stage}", reason="wrong_stage"
        )


def adopt_recovered(session: KioskSession) -> bool:
    """After an agent restart: a purchase the engine recovered takes the screen."""
    live = journaled.recovered(session, session.agent.cheques.live.values())
    if live is not None:
        follow(session, live)
    return live is not None
