"""A tube transaction on screen: follow the engine's state, hand the customer's steps to it.

The engine owns the transaction (journal, time limits, recovery); this module only shows its
stage and passes on send / confirm / dispute / confirm-receipt / cancel. A transaction the
engine recovered after an agent restart is shown by itself (``recovered``), so the customer
at the terminal sees where it stands and can finish their step.
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Any

from branchline.agent.kiosk import i18n
from branchline.agent.kiosk.flows import journaled
from branchline.agent.tube import customer
from branchline.agent.tube import machines as m
from branchline.agent.tube.engine import Intent, Live, TubeRefused
from branchline.common.errors import DomainError, FailedPrecondition
from branchline.v1 import tube_pb2 as pb

if TYPE_CHECKING:
    from branchline.agent.kiosk.session import KioskSession

STEP_NAMES = {
    pb.CUSTOMER_STEP_NONE: "none",
    pb.CUSTOMER_STEP_LOAD_CARRIER: "load_carrier",
    pb.CUSTOMER_STEP_DECIDE: "decide",
    pb.CUSTOMER_STEP_TAKE_CARRIER: "take_carrier",
    pb.CUSTOMER_STEP_CONFIRM_RECEIPT: "confirm_receipt",
    pb.CUSTOMER_STEP_WAIT: "wait",
}
KIND_NAMES = {m.DEPOSIT: "deposit", m.WITHDRAWAL: "withdrawal"}
DECISIONS = {
    "confirm": pb.DECISION_CONFIRM,
    "dispute_return": pb.DECISION_DISPUTE_RETURN,
    "dispute_teller": pb.DECISION_DISPUTE_TELLER,
}
# The stages where each intent is taken (as ``customer.py`` asks the engine).
ACCEPTED = {
    "send": frozenset({"awaiting_carrier"}),
    "decide": frozenset({"counted"}),
    "confirm_receipt": frozenset({"taken"}),
    "cancel": frozenset({"awaiting_carrier", "awaiting_delivery"}),
}
SENT_BY_BANK = (pb.TUBE_STATE_DISPATCHED, pb.TUBE_STATE_DELIVERED)
_FIELD = re.compile(r"^([a-z_][a-z_.]*): ")


def refusal(exc: TubeRefused) -> DomainError:
    """The engine's refusal in the project's error model, the field taken from its message."""
    match = _FIELD.match(exc.message)
    return journaled.refusal(exc, match.group(1) if match else "")


def code_key(lang: str, code: str) -> str:
    """The catalogue key telling the customer why a step was not taken (``""``: none)."""
    return journaled.code_key(lang, "tube", code)


def can_cancel(live: Live) -> bool:
    if live.stage == "awaiting_carrier":
        return True
    if live.stage == "awaiting_delivery":
        return live.server is None or live.server.state not in SENT_BY_BANK
    return False


# The stages in which the receipt prints: without one chosen they say nothing of printing.
PRINTING_STAGES = frozenset({m.POSTED, m.RETURN_TAKEN})


def message_key(live: Live) -> str:
    if live.stage in PRINTING_STAGES and live.data.get("receipt") is False:
        return "tube.stage.finishing"
    return f"tube.stage.{live.stage}"


def tube_data(session: KioskSession, live: Live) -> dict[str, Any]:
    lang = session.lang
    view = customer.view(session.agent.tube, live)
    asset = live.data.get("asset", {})
    account_currency = str(live.data.get("account_currency", ""))
    declared = i18n.format_amount(
        lang, str(asset.get("amount", "")), str(asset.get("currency", ""))
    )
    counted = rate = account_amount = ""
    server = live.server
    if server is not None:
        if server.HasField("counted") and server.counted.amount:
            counted = i18n.format_amount(lang, server.counted.amount, server.counted.currency)
        if server.HasField("quote") and server.quote.rate_version:
            rate = server.quote.rate
            account_amount = i18n.format_amount(
                lang, server.quote.account_amount, server.quote.account_currency or account_currency
            )
    return {
        "kind": KIND_NAMES.get(live.kind, live.kind),
        "stage": live.stage,
        "step": STEP_NAMES.get(view.next, "wait"),
        "message_key": message_key(live),
        "account_id": str(live.data.get("account_id", "")),
        "declared": declared,
        "counted": counted,
        "rate": rate,
        "rate_version": int(live.data.get("rate_version", 0)),
        "account_amount": account_amount,
        "finished": live.finished,
        "outcome": live.stage if live.finished else "",
        "code": live.code,
        "code_key": code_key(session.lang, live.code),
        "reference": view.receipt_reference,
        "recovered": live.recovered,
        "can_cancel": can_cancel(live),
        # Whether a receipt comes out at the end (declined ones do not, unless a teller ends it).
        "receipt": live.data.get("receipt") is not False or live.stage == m.HANDED_TO_TELLER,
        # The page records the kiosk camera while this is set (static/recording.js).
        "record": None if live.finished else record_request(live.txn_id, "tube"),
        # The result screen offers "my recordings" of this transaction to a signed-in customer.
        "watch_recordings": live.finished
        and session.customer is not None
        and getattr(session.agent, "recordings", None) is not None,
    }


def view_reference(session: KioskSession, live: Live) -> str:
    return customer.view(session.agent.tube, live).receipt_reference


def record_request(txn_ref: str, kind: str) -> dict[str, str]:
    """What a screen's data carries for the page to record the kiosk camera (the hook for
    any flow: the cheque purchase sets it with kind ``cheque``)."""
    return {"txn_ref": txn_ref, "kind": kind, "source": "kiosk"}


def follow(session: KioskSession, live: Live) -> None:
    """Show ``live`` from now on, until it is finished and the customer moves on."""
    session.scratch["txn_id"] = live.txn_id
    journaled.follow(session, live, "tube", tube_data)


def relabel(session: KioskSession) -> None:
    live = _current(session)
    if live is not None:
        session.update(**tube_data(session, live))


def _current(session: KioskSession) -> Live | None:
    txn_id = session.scratch.get("txn_id")
    return session.agent.tube.live.get(txn_id) if txn_id else None


def adopt_recovered(session: KioskSession) -> None:
    """After an agent restart: a transaction the engine recovered takes the screen."""
    if session.screen not in ("attract", "out_of_service", "resuming"):
        return
    if session.customer is not None:
        return
    live = journaled.recovered(session, session.agent.tube.live.values())
    if live is not None:
        follow(session, live)
        return
    if session.screen == "resuming" and session.clock() >= session.scratch.get(
        "resuming_until", 0.0
    ):
        session.show_attract()


async def unfinished_in_journal(session: KioskSession) -> bool:
    """Whether the journal holds a tube transaction the engine will recover on start."""
    store = getattr(session.agent, "store", None)
    if store is None:
        return False
    try:
        unfinished = await asyncio.to_thread(store.txjournal.unfinished)
    except Exception:  # an unreadable journal is the engine's to report; show attract
        return False
    return any(txn.kind in m.MACHINES and not txn.problem for txn in unfinished)


async def _intend(session: KioskSession, live: Live, name: str, decision: int = 0) -> None:
    engine = session.agent.tube
    try:
        if session.customer is not None:
            sid = session.customer.session_id
            if name == "send":
                await customer.send_carrier(engine, sid, live.txn_id)
            elif name == "decide":
                await customer.decide(engine, sid, live.txn_id, decision)
            elif name == "confirm_receipt":
                await customer.confirm_receipt(engine, sid, live.txn_id)
            else:
                await customer.cancel(engine, sid, live.txn_id)
            return
        # A transaction recovered after a restart: the customer who opened it is the one at
        # the terminal (the card session died with the old process); steps go to the engine
        # directly, with the same stage checks.
        if name == "cancel" and not can_cancel(live):
            raise TubeRefused(
                "precondition", "already_dispatched", "txn_id: the carrier is on its way"
            )
        await engine.intend(live, Intent(name, live.customer_id, decision), ACCEPTED[name])
    except TubeRefused as exc:
        raise refusal(exc) from None


async def on_action(session: KioskSession, action: str, data: dict[str, Any]) -> None:
    live = _current(session)
    if live is None:
        raise FailedPrecondition("txn_id: no transaction on screen", reason="no_transaction")
    if live.finished:
        if action == "recordings" and session.customer is not None:
            from branchline.agent.kiosk.flows import recordings

            session.scratch.pop("txn_id", None)
            recordings.show(session, view_reference(session, live))
            return
        if action != "done":
            raise FailedPrecondition(
                f"action: the transaction has ended; done, not {action[:32]!r}",
                reason="wrong_stage",
            )
        session.scratch.pop("txn_id", None)
        if session.customer is not None:
            session.home()
        else:
            session.run(session.end("finished"), "done")
        return
    step = STEP_NAMES.get(customer.view(session.agent.tube, live).next, "wait")
    if action == "send" and step == "load_carrier":
        session.spawn(_intend(session, live, "send"), "send", action)
    elif action in DECISIONS and step == "decide":
        session.spawn(_intend(session, live, "decide", DECISIONS[action]), "decide", action)
    elif action == "confirm_receipt" and step == "confirm_receipt":
        session.spawn(_intend(session, live, "confirm_receipt"), "confirm_receipt", action)
    elif action == "cancel" and can_cancel(live):
        session.spawn(_intend(session, live, "cancel"), "cancel", action)
    else:
        raise FailedPrecondition(
            f"action: {action[:32]!r} is not taken at stage {live.stage}", reason="wrong_stage"
        )


async def start(
    session: KioskSession, kind: str, request: pb.StartTubeRequest, receipt: bool = True
) -> None:
    """Open a deposit or withdrawal with the engine and follow it; a refusal goes back to the
    form the customer filled in. ``receipt``: whether the customer wants a printed receipt."""
    engine = session.agent.tube
    try:
        live = await customer.start(engine, request, kind, receipt=receipt)
    except TubeRefused as exc:
        raise refusal(exc) from None
    follow(session, live)
    await asyncio.sleep(0)
