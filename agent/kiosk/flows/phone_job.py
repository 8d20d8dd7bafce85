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
5. Run; every step is reported back (``phone_job_update``), and the end with the receipt
   reference (or the statement's lines for ``statement_view``).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from branchline.agent.customer.session import AccountView
from branchline.agent.customer.statement import fetch_statement
from branchline.agent.kiosk.flows import deposit, statement, tube, video
from branchline.agent.service_state import ServiceState
from branchline.agent.tube import customer as tube_customer
from branchline.agent.tube import machines as m
from branchline.agent.uplink import UplinkUnavailable
from branchline.common.errors import DomainError, FailedPrecondition
from branchline.common.logs import log_event
from branchline.v1 import mobile_pb2, tube_pb2
from branchline.v1 import terminal_link_pb2 as link_pb

if TYPE_CHECKING:
    from branchline.agent.kiosk.session import KioskSession

log = logging.getLogger("branchline.agent.kiosk.phone_job")

# The devices each service needs working here (as the server's service list).
NEEDS = {
    "tube_deposit": ("tube_station",),
    "tube_withdrawal": ("tube_station",),
    "statement_print": ("printer",),
    "cheque_book": ("cheque_printer",),
}
CARD_DEVICES = ("card_reader", "pin_pad")
WORKING = ("online", "busy")
IDLE_SCREENS = ("attract",)
STATEMENT_LINES = 20
# Services this terminal's software carries out from a phone (cheque_book: the cheque
# capability's job type, refused here until its kiosk flow exists).
CARRIED = ("tube_deposit", "tube_withdrawal", "statement_view", "statement_print", "video_teller")


class PhoneJobs:
    """The job this terminal is carrying out for a phone, and the jobs it has seen."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.current: mobile_pb2.PhoneJobOffer | None = None


_JOBS: weakref.WeakKeyDictionary[KioskSession, PhoneJobs] = weakref.WeakKeyDictionary()


def jobs_of(session: KioskSession) -> PhoneJobs:
    """The terminal's phone jobs (outliving each customer session's scratch data)."""
    found = _JOBS.get(session)
    if found is None:
        found = _JOBS[session] = PhoneJobs()
    return found


async def report(session: KioskSession, job_id: str, state: str, **fields: Any) -> None:
    """Tell the server how the job stands (best effort: the server keeps the last state)."""
    update = mobile_pb2.PhoneJobUpdate(job_id=job_id, state=state)
    for name, value in fields.items():
        if name == "statement":
            update.statement.extend(value)
        else:
            setattr(update, name, value)
    try:
        await session.agent.uplink.request(phone_job_update=update)
    except (UplinkUnavailable, DomainError) as exc:
        log_event(log, "phone_job_report_failed", logging.WARNING, job_id=job_id, why=str(exc))
    log_event(log, "phone_job_state", job_id=job_id, state=state)


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
        await report(session, offer.job_id, "received")
        why = refusal_reason(session, offer)
        if why:
            await report(session, offer.job_id, "failed", reason=why)
            return
        jobs.current = offer
        show_ready(session)
        await report(session, offer.job_id, "ready")

    session.agent.uplink.on_push("phone_job", on_push)


def job_data(offer: mobile_pb2.PhoneJobOffer) -> dict[str, Any]:
    """What the page shows of the job: never the session token or accounts' balances."""
    return {
        "job_id": offer.job_id,
        "service": offer.service,
        "auth": offer.auth,
        "account_id": offer.account_id,
        "amount": offer.amount,
        "currency": offer.currency,
        "period_from": offer.period_from,
        "period_to": offer.period_to,
        "business_type": offer.business_type,
        "matching_code": offer.matching_code,
        "needs_presence": offer.needs_presence,
    }


def show_ready(session: KioskSession) -> None:
    offer = jobs_of(session).current
    assert offer is not None
    session.show("phone_job", **job_data(offer))


def _current(session: KioskSession) -> mobile_pb2.PhoneJobOffer:
    offer = jobs_of(session).current
    if offer is None:
        raise FailedPrecondition("action: no phone job is waiting", reason="no_phone_job")
    return offer


async def on_ready(session: KioskSession, action: str, data: dict[str, Any]) -> None:
    """``phone_job`` screen: ``start`` or ``cancel``."""
    from branchline.agent.kiosk.flows import card_pin

    offer = _current(session)
    if action == "cancel":
        session.run(_finish(session, offer, "canceled", reason="canceled_at_terminal"), "cancel")
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
    await report(session, offer.job_id, "authenticating")
    card_pin.start(session, "phone_job")


def after_sign_in(session: KioskSession) -> None:
    """Entered after card + PIN (``ENTER['phone_job']``): bind, then confirm or run."""
    session.run(after_sign_in_async(session), "phone_job")


async def after_sign_in_async(session: KioskSession) -> None:
    offer = _current(session)
    customer = deposit.signed_in(session)
    await report(session, offer.job_id, "authenticating", customer_id=customer.customer_id)
    if offer.needs_presence:
        await report(session, offer.job_id, "confirming")
        session.show("phone_job_confirm", **job_data(offer), account_id_used=_account(session))
        return
    await _run(session, offer)


async def on_confirm(session: KioskSession, action: str, data: dict[str, Any]) -> None:
    """``phone_job_confirm``: the customer here confirms the value-out job (or cancels)."""
    offer = _current(session)
    if action == "cancel":
        session.run(_finish(session, offer, "canceled", reason="canceled_at_terminal"), "cancel")
    elif action == "confirm":
        session.run(_run(session, offer), "phone_job")
    else:
        raise FailedPrecondition(
            f"action: confirm or cancel, not {action[:32]!r}", reason="wrong_screen"
        )


def _account(session: KioskSession) -> str:
    """The job's account; for card + PIN jobs without one, the customer's first account of
    the kind the service needs (in the job's currency when there is one)."""
    offer = _current(session)
    customer = deposit.signed_in(session)
    if offer.account_id:
        return offer.account_id
    wanted = deposit.ACCOUNT_KIND.get(offer.asset_kind or "cash", "cash")
    fits = [a for a in customer.accounts if a.kind == wanted]
    same = [a for a in fits if a.currency == offer.currency]
    chosen = same or fits or list(customer.accounts)
    return chosen[0].account_id if chosen else ""


async def _run(session: KioskSession, offer: mobile_pb2.PhoneJobOffer) -> None:
    runner = RUNNERS[offer.service]
    await report(session, offer.job_id, "running")
    try:
        await runner(session, offer)
    except DomainError as exc:
        await _finish(session, offer, "failed", reason=exc.reason or "refused")
        raise


async def _finish(
    session: KioskSession, offer: mobile_pb2.PhoneJobOffer, state: str, **fields: Any
) -> None:
    await report(session, offer.job_id, state, **fields)
    jobs_of(session).current = None
    if state != "done":
        await session.end("canceled" if state == "canceled" else "finished")


async def _tube(session: KioskSession, offer: mobile_pb2.PhoneJobOffer) -> None:
    customer = deposit.signed_in(session)
    kind = m.WITHDRAWAL if offer.service == "tube_withdrawal" else m.DEPOSIT
    asset = tube_pb2.TubeAsset(
        kind=deposit.KINDS[offer.asset_kind or "cash"],
        currency=offer.currency,
        amount=offer.amount,
    )
    request = tube_pb2.StartTubeRequest(
        session_id=customer.session_id, account_id=_account(session), asset=asset
    )
    await tube.start(session, kind, request, True)
    live = session.agent.tube.live.get(session.scratch.get("txn_id", ""))
    if live is None:
        await _finish(session, offer, "failed", reason="not_started")
        return
    session.spawn(_follow_tube(session, offer, live), "phone_job_follow", "")


async def _follow_tube(session: KioskSession, offer: mobile_pb2.PhoneJobOffer, live: Any) -> None:
    while not live.finished:
        changed = live.changed
        await changed.wait()
    view = tube_customer.view(session.agent.tube, live)
    state = "done" if live.stage in (m.COMPLETED, m.HANDED_TO_TELLER) else "failed"
    await report(
        session,
        offer.job_id,
        state,
        reason="" if state == "done" else (live.code or live.stage),
        receipt_reference=view.receipt_reference or "",
    )
    jobs_of(session).current = None


async def _statement_view(session: KioskSession, offer: mobile_pb2.PhoneJobOffer) -> None:
    customer = deposit.signed_in(session)
    found, _ = await fetch_statement(
        session.agent, customer.session_id, _account(session), STATEMENT_LINES
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
    await _finish(session, offer, "done", statement=lines)
    session.home()


async def _statement_print(session: KioskSession, offer: mobile_pb2.PhoneJobOffer) -> None:
    account_id = _account(session)
    for key in ("statement", "printed", "print_failed"):
        session.scratch.pop(key, None)
    session.show("statement", **statement.statement_data(session))
    await statement._load(session, account_id)
    await statement._print(session)
    printed = session.scratch.get("printed", "")
    if printed:
        await _finish(session, offer, "done", receipt_reference=str(printed))
    else:
        await _finish(session, offer, "failed", reason="not_printed")


async def _video(session: KioskSession, offer: mobile_pb2.PhoneJobOffer) -> None:
    video.show(session)
    await video._request(session, offer.business_type, video.MODES["video_teller"])
    call = session.agent.calls.call
    position = call.position if call is not None else 0
    await report(session, offer.job_id, "done", queue_position=position)
    jobs_of(session).current = None


RUNNERS: dict[str, Callable[[KioskSession, mobile_pb2.PhoneJobOffer], Awaitable[None]]] = {
    "tube_deposit": _tube,
    "tube_withdrawal": _tube,
    "statement_view": _statement_view,
    "statement_print": _statement_print,
    "video_teller": _video,
}
