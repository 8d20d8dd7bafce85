"""A job filled in on the paired phone, carried out here through the same engines as a job
started at the terminal (the tube engine, the statement flow, the video-teller call).

The server pushes ``phone_job`` (``server/mobile/job_link.py``) until this terminal reports
it ``received``; a job already seen is only acknowledged again (exactly once). Then:

1. The terminal checks it can (the devices the service needs work, nobody else is being
   served): else it reports ``failed`` before anything happens (never half-run).
2. ``phone_job`` screen (ready): the summary and the matching code; the customer presses
   start (or cancel).
3. Authentication: ``terminal`` — card + PIN on this terminal's devices (the card_pin
   flow), the job then bound to that card's customer; ``bank`` — the customer signed in on
   the phone and the job carries a customer session for this terminal (kept by the agent,
   never sent to the page).
4. Value out (withdrawal, cheque book): the ``phone_job_confirm`` screen; nothing is
   released before the customer presses confirm here.
5. Run, once the server has recorded the job ``running`` (a job the server ended meanwhile
   is dropped); every step is reported back (``phone_job_update``), and the end with the
   receipt reference (or the statement's lines for ``statement_view``).

A job left unfinished ends ``abandoned`` with a reason, once (``phone_job_state.py``):
the kiosk session ending on its screens (``timeout``: nobody there, page closed or not),
the terminal going out of service (``out_of_service``), an agent restart
(``phone_job_recovery.py``: the job follows the transaction it started).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from branchline.agent.customer.session import AccountView
from branchline.agent.customer.statement import fetch_statement
from branchline.agent.kiosk.flows import (
    deposit,
    phone_cheque,
    phone_job_recovery,
    phone_quote,
    statement,
    tube,
    video,
)
from branchline.agent.kiosk.flows import phone_job_journal as journal
from branchline.agent.kiosk.flows.phone_job_state import (
    FINISHED,
    account_for,
    current,
    db_of,
    dropped,
    end_job,
    finish,
    follow_transaction,
    intend_transaction,
    jobs_of,
    report,
)
from branchline.agent.service_state import ServiceState
from branchline.agent.tube import customer as tube_customer
from branchline.agent.tube import machines as m
from branchline.common.errors import DomainError, FailedPrecondition
from branchline.v1 import calls_pb2, mobile_pb2, tube_pb2
from branchline.v1 import terminal_link_pb2 as link_pb

if TYPE_CHECKING:
    from branchline.agent.kiosk.session import KioskSession

# The devices each service needs working here (as the server's service list).
NEEDS = {
    "tube_deposit": ("tube_station",),
    "tube_withdrawal": ("tube_station",),
    "statement_print": ("printer",),
    # The cheque sale also reads the ID card and the face (agent/cheques/customer.py).
    "cheque_book": ("cheque_printer", "face_camera", "id_reader"),
}
CARD_DEVICES = ("card_reader", "pin_pad")
WORKING = ("online", "busy")
IDLE_SCREENS = ("attract",)
STATEMENT_LINES = 20
# Services this terminal's software carries out from a phone.
CARRIED = (
    "tube_deposit",
    "tube_withdrawal",
    "statement_view",
    "statement_print",
    "cheque_book",
    "video_teller",
)


def _device_status(session: KioskSession) -> dict[str, str]:
    return {s.name: s.status.value for s in session.agent.device_snapshots()}


def refusal_reason(session: KioskSession, offer: mobile_pb2.PhoneJobOffer) -> str:
    """Why this terminal cannot carry out ``offer`` now ("" when it can)."""
    if offer.service not in CARRIED:
        return "service_not_supported"
    if session.agent.service.state != ServiceState.IN_SERVICE:
        return "out_of_service"
    status = _device_status(session)
    needs = NEEDS.get(offer.service, ()) + (CARD_DEVICES if offer.auth == "terminal" else ())
    if any(status.get(name) not in WORKING for name in needs):
        return "device_unavailable"
    if session.screen not in IDLE_SCREENS or session.customer is not None:
        return "terminal_busy"
    return ""


def attach(session: KioskSession) -> None:
    """Follow the server's ``phone_job`` pushes for ``session``."""

    async def on_push(message: link_pb.ServerMessage) -> None:
        offer = message.phone_job
        jobs = jobs_of(session)
        if offer.job_id in jobs.seen:  # pushed again before our receipt arrived
            await report(session, offer.job_id, "received")
            return
        jobs.seen.add(offer.job_id)
        db = db_of(session)
        if db is not None:  # journaled before the server hears it was received
            await asyncio.to_thread(journal.remember, db, offer.job_id, offer.service)
        at_server = await report(session, offer.job_id, "received")
        if at_server in FINISHED:  # ended at the server meanwhile (its pairing ended)
            await dropped(session, offer, at_server)
            return
        why = refusal_reason(session, offer)
        if why:
            await end_job(session, offer.job_id, "failed", offer.service, reason=why)
            return
        jobs.take(offer)
        show_ready(session)
        await _step(session, offer, "ready")

    session.agent.uplink.on_push("phone_job", on_push)
    phone_job_recovery.start(session)


async def _step(
    session: KioskSession, offer: mobile_pb2.PhoneJobOffer, state: str, **fields: Any
) -> bool:
    """Report a step; False (and the job dropped here) when the server had ended the job."""
    at_server = await report(session, offer.job_id, state, **fields)
    if at_server in FINISHED:
        await dropped(session, offer, at_server)
        return False
    return True


def job_data(offer: mobile_pb2.PhoneJobOffer) -> dict[str, Any]:
    """What the page shows of the job: never the session token, accounts' balances or the
    job id (a long random hex run, which the pages' secret check rightly flags)."""
    return {
        "service": offer.service,
        "auth": offer.auth,
        "account_id": offer.account_id,
        "amount": offer.amount,
        "currency": offer.currency,
        "period_from": offer.period_from,
        "period_to": offer.period_to,
        "business_type": offer.business_type,
        "cheque_leaves": offer.cheque_leaves,
        "matching_code": offer.matching_code,
        "needs_presence": offer.needs_presence,
    }


def show_ready(session: KioskSession) -> None:
    offer = jobs_of(session).current
    assert offer is not None
    session.show("phone_job", **job_data(offer))


async def on_ready(session: KioskSession, action: str, data: dict[str, Any]) -> None:
    """``phone_job`` screen: ``start`` or ``cancel``."""
    from branchline.agent.kiosk.flows import card_pin

    offer = current(session)
    if action == "cancel":
        session.run(finish(session, offer, "canceled", reason="canceled_at_terminal"), "cancel")
        return
    if action != "start":
        raise FailedPrecondition(
            f"action: the phone job takes start or cancel, not {action[:32]!r}",
            reason="wrong_screen",
        )
    if offer.auth == "bank":
        session.customer = session.agent.sessions.open(
            offer.session_token,
            offer.customer_id,
            "",
            tuple(AccountView(a.account_id, a.kind, a.currency, a.available, a.available)
                  for a in offer.accounts),
        )  # fmt: skip
        session.run(after_sign_in_async(session), "phone_job")
        return
    if await _step(session, offer, "authenticating"):
        card_pin.start(session, "phone_job")


def after_sign_in(session: KioskSession) -> None:
    """Entered after card + PIN (``ENTER['phone_job']``): bind, then confirm or run."""
    session.run(after_sign_in_async(session), "phone_job")


async def after_sign_in_async(session: KioskSession) -> None:
    offer = current(session)
    customer = deposit.signed_in(session)
    if not await _step(session, offer, "authenticating", customer_id=customer.customer_id):
        return
    if offer.needs_presence:
        try:
            rate = phone_quote.confirm_data(session, offer)
        except DomainError as exc:  # no rates here now, or an account that cannot pay out
            await finish(session, offer, "failed", reason=exc.reason or "refused")
            raise
        if await _step(session, offer, "confirming"):
            _show_confirm(session, offer, rate)
        return
    await _run(session, offer)


def _show_confirm(
    session: KioskSession, offer: mobile_pb2.PhoneJobOffer, rate: dict[str, Any]
) -> None:
    session.show(
        "phone_job_confirm", **job_data(offer), account_id_used=account_for(session), **rate
    )


async def on_confirm(session: KioskSession, action: str, data: dict[str, Any]) -> None:
    """``phone_job_confirm``: the customer here confirms the value-out job (or cancels)."""
    offer = current(session)
    if action == "cancel":
        session.run(finish(session, offer, "canceled", reason="canceled_at_terminal"), "cancel")
    elif action == "confirm":
        moved = phone_quote.still_shown(session, offer)
        if moved:  # the rates changed while the screen was up: show the new rate, ask again
            _show_confirm(session, offer, moved)
            raise phone_quote.changed_error()
        session.run(_run(session, offer), "phone_job")
    else:
        raise FailedPrecondition(
            f"action: confirm or cancel, not {action[:32]!r}", reason="wrong_screen"
        )


async def _run(session: KioskSession, offer: mobile_pb2.PhoneJobOffer) -> None:
    runner = RUNNERS[offer.service]
    at_server = await report(session, offer.job_id, "running")
    if at_server in FINISHED:
        await dropped(session, offer, at_server)
        return
    if at_server != "running":  # nothing runs that the server has not recorded
        await finish(session, offer, "failed", reason="bank_unavailable")
        return
    try:
        await runner(session, offer)
    except DomainError as exc:
        await finish(session, offer, "failed", reason=exc.reason or "refused")
        raise


async def _tube(session: KioskSession, offer: mobile_pb2.PhoneJobOffer) -> None:
    customer = deposit.signed_in(session)
    kind = m.WITHDRAWAL if offer.service == "tube_withdrawal" else m.DEPOSIT
    asset = tube_pb2.TubeAsset(
        kind=deposit.KINDS[offer.asset_kind or "cash"],
        currency=offer.currency,
        amount=offer.amount,
    )
    request = tube_pb2.StartTubeRequest(
        session_id=customer.session_id, account_id=account_for(session), asset=asset
    )
    await intend_transaction(session, offer, "tube")
    await tube.start(session, kind, request, True)
    live = session.agent.tube.live.get(session.scratch.get("txn_id", ""))
    if live is None:
        await finish(session, offer, "failed", reason="not_started")
        return
    await follow_transaction(session, offer, "tube", live.txn_id)
    session.spawn(_follow_tube(session, offer, live), "phone_job_follow", "")


async def _follow_tube(session: KioskSession, offer: mobile_pb2.PhoneJobOffer, live: Any) -> None:
    while not live.finished:
        changed = live.changed
        await changed.wait()
    view = tube_customer.view(session.agent.tube, live)
    state = "done" if live.stage in (m.COMPLETED, m.HANDED_TO_TELLER) else "failed"
    jobs_of(session).clear()
    await end_job(
        session,
        offer.job_id,
        state,
        offer.service,
        reason="" if state == "done" else (live.code or live.stage),
        receipt_reference=view.receipt_reference or "",
    )


async def _statement_view(session: KioskSession, offer: mobile_pb2.PhoneJobOffer) -> None:
    customer = deposit.signed_in(session)
    found, _ = await fetch_statement(
        session.agent, customer.session_id, account_for(session), STATEMENT_LINES
    )
    lines = [
        mobile_pb2.PhoneStatementLine(
            date=line.posted_at.ToDatetime().date().isoformat(),
            description=line.description,
            amount=line.amount,
            balance=line.balance_after,
        )
        for line in found.lines
        if offer.period_from <= line.posted_at.ToDatetime().date().isoformat() <= offer.period_to
    ]
    await finish(session, offer, "done", statement=lines)
    session.home()


async def _statement_print(session: KioskSession, offer: mobile_pb2.PhoneJobOffer) -> None:
    account_id = account_for(session)
    for key in ("statement", "printed", "print_failed"):
        session.scratch.pop(key, None)
    session.show("statement", **statement.statement_data(session))
    await statement._load(session, account_id)
    await statement._print(session)
    printed = session.scratch.get("printed", "")
    if printed:
        await finish(session, offer, "done", receipt_reference=str(printed))
    else:
        await finish(session, offer, "failed", reason="not_printed")


async def _video(session: KioskSession, offer: mobile_pb2.PhoneJobOffer) -> None:
    video.show(session)
    await video._request(session, offer.business_type, video.MODES["video_teller"])
    call_id = str(session.scratch.get("call_id", ""))
    jobs_of(session).followed = True
    session.spawn(_follow_call(session, offer, call_id), "phone_job_follow", "")


async def _follow_call(
    session: KioskSession, offer: mobile_pb2.PhoneJobOffer, call_id: str
) -> None:
    """While queued, the position goes to the phone each time it changes (running); a
    teller taking the call ends the job done; a call left or ended before that, canceled."""
    calls = session.agent.calls
    shown = -1
    try:
        with calls.watch() as events:
            while True:
                call = calls.call
                if call is not None and call.call_id == call_id:
                    if call.state == calls_pb2.CALL_STATE_QUEUED:
                        if call.position != shown:
                            shown = call.position
                            await report(session, offer.job_id, "running", queue_position=shown)
                    elif call.state in (calls_pb2.CALL_STATE_RINGING, calls_pb2.CALL_STATE_ACTIVE):
                        jobs_of(session).clear()
                        await end_job(session, offer.job_id, "done", offer.service)
                        return
                    else:
                        jobs_of(session).clear()
                        await end_job(
                            session, offer.job_id, "canceled", offer.service, reason="left_queue"
                        )
                        return
                await events.get()
    finally:
        if jobs_of(session).current is offer:
            jobs_of(session).clear()


RUNNERS: dict[str, Callable[[KioskSession, mobile_pb2.PhoneJobOffer], Awaitable[None]]] = {
    "tube_deposit": _tube,
    "tube_withdrawal": _tube,
    "statement_view": _statement_view,
    "statement_print": _statement_print,
    "cheque_book": phone_cheque.run,
    "video_teller": _video,
}
