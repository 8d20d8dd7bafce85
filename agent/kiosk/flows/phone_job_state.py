"""The phone job this terminal is carrying out, and how it tells the server how it stands:
shared by the job flow (``phone_job.py``) and the runners that live beside it
(``phone_cheque.py``).

Steps are reported best effort (the server keeps the last state); the end is journaled
first (``phone_job_journal.py``) and sent until the server acknowledges it, across
restarts. The server's acknowledgement carries the job's state there: a job the server has
already ended (``job_sweep.py``: its phone's pairing ended, or this terminal was offline)
is dropped here, and nothing is run for a job the server has not recorded ``running``."""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import TYPE_CHECKING, Any

from branchline.agent.journal.db import Database
from branchline.agent.kiosk.flows import deposit
from branchline.agent.kiosk.flows import phone_job_journal as journal
from branchline.agent.service_state import ServiceState
from branchline.agent.uplink import UplinkUnavailable
from branchline.common.errors import DomainError, FailedPrecondition
from branchline.common.logs import log_event
from branchline.v1 import mobile_pb2

if TYPE_CHECKING:
    from branchline.agent.kiosk.session import KioskSession

log = logging.getLogger("branchline.agent.kiosk.phone_job")


# The job's ends, as the server names them.
FINISHED = frozenset({"done", "failed", "canceled", "abandoned"})
ABANDONED = "abandoned"
# How often an end the server has not acknowledged is sent again.
RETRY_SECONDS = 1.0
# Why the kiosk session ended -> how a job still on its screens ends.
ENDS = {
    "timeout": ("abandoned", "timeout"),
    "canceled": ("canceled", "canceled_at_terminal"),
    "out_of_service": ("abandoned", "out_of_service"),
    # Ended another way on the job's behalf (a card refused, then ok).
    "finished": ("abandoned", "session_ended"),
}


class PhoneJobs:
    """The job this terminal is carrying out for a phone, and the jobs it has seen."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.current: mobile_pb2.PhoneJobOffer | None = None
        # A transaction or call follower reports the job's end (the session's end does not).
        self.followed = False
        # The session is being ended for the job (out of service): not asked twice.
        self.ending = False

    def take(self, offer: mobile_pb2.PhoneJobOffer) -> None:
        self.current, self.followed, self.ending = offer, False, False

    def clear(self) -> None:
        self.current, self.followed, self.ending = None, False, False


_JOBS: weakref.WeakKeyDictionary[KioskSession, PhoneJobs] = weakref.WeakKeyDictionary()


def jobs_of(session: KioskSession) -> PhoneJobs:
    """The terminal's phone jobs (outliving each customer session's scratch data)."""
    found = _JOBS.get(session)
    if found is None:
        found = _JOBS[session] = PhoneJobs()
    return found


def db_of(session: KioskSession) -> Database | None:
    """The agent's journal (None for a kiosk built without one)."""
    store = getattr(session.agent, "store", None)
    return getattr(store, "db", None)


def _update(job_id: str, state: str, fields: dict[str, Any]) -> mobile_pb2.PhoneJobUpdate:
    update = mobile_pb2.PhoneJobUpdate(job_id=job_id, state=state)
    for name, value in fields.items():
        if name == "statement":
            update.statement.extend(value)
        else:
            setattr(update, name, value)
    return update


async def _send(session: KioskSession, update: mobile_pb2.PhoneJobUpdate) -> str | None:
    """The job's state at the server after ``update``; None when the bank was not reached;
    "" when the server refused it (the refusal is logged)."""
    try:
        reply = await session.agent.uplink.request(phone_job_update=update)
    except UplinkUnavailable as exc:
        why = str(exc)
        log_event(log, "phone_job_report_failed", logging.WARNING, job_id=update.job_id, why=why)
        return None
    except DomainError as exc:
        log_event(
            log, "phone_job_report_refused", logging.WARNING, job_id=update.job_id, why=str(exc)
        )
        return ""
    if reply.HasField("error"):
        log_event(
            log, "phone_job_report_refused", logging.WARNING,
            job_id=update.job_id, why=reply.error.message,
        )  # fmt: skip
        return ""
    return reply.phone_job_ack.state


async def report(session: KioskSession, job_id: str, state: str, **fields: Any) -> str:
    """Tell the server how the job stands (best effort); the job's state at the server ("":
    not known)."""
    found = await _send(session, _update(job_id, state, fields))
    log_event(log, "phone_job_state", job_id=job_id, state=state)
    return found or ""


async def deliver(session: KioskSession, update: mobile_pb2.PhoneJobUpdate) -> None:
    """Send a journaled end until the server answers, then forget it (the server stores
    the first end it gets and answers a repeat with it)."""
    db = db_of(session)
    while True:
        if await _send(session, update) is not None:
            break
        await asyncio.sleep(RETRY_SECONDS)  # the uplink has no "connected" event to wait on
    if db is not None:
        await asyncio.to_thread(journal.forget, db, update.job_id)
    log_event(log, "phone_job_end_delivered", job_id=update.job_id, state=update.state)


async def end_job(
    session: KioskSession, job_id: str, state: str, service: str = "", **fields: Any
) -> None:
    """The job's end: journaled, then sent (again later, in the background, while the
    bank cannot be reached)."""
    update = _update(job_id, state, fields)
    db = db_of(session)
    if db is not None:
        await asyncio.to_thread(journal.decide, db, update, service)
        stored = await asyncio.to_thread(journal.final, db, job_id)
        update = stored or update  # an end decided before (a restart) is the one sent
    found = await _send(session, update)
    log_event(log, "phone_job_state", job_id=job_id, state=state)
    if found is not None:
        if db is not None:
            await asyncio.to_thread(journal.forget, db, job_id)
        return
    session.keep(asyncio.ensure_future(deliver(session, update)))


async def dropped(session: KioskSession, offer: mobile_pb2.PhoneJobOffer, state: str) -> None:
    """The server ended the job already (its end is the one kept): nothing more runs here."""
    log_event(log, "phone_job_ended_at_server", job_id=offer.job_id, state=state)
    db = db_of(session)
    if db is not None:
        await asyncio.to_thread(journal.forget, db, offer.job_id)
    if jobs_of(session).current is offer:
        jobs_of(session).clear()
        await session.end("canceled")


def current(session: KioskSession) -> mobile_pb2.PhoneJobOffer:
    offer = jobs_of(session).current
    if offer is None:
        raise FailedPrecondition("action: no phone job is waiting", reason="no_phone_job")
    return offer


def account_for(session: KioskSession) -> str:
    """The job's account; for card + PIN jobs without one, the customer's first account of
    the kind the service needs (in the job's currency when there is one)."""
    offer = current(session)
    customer = deposit.signed_in(session)
    if offer.account_id:
        return offer.account_id
    wanted = deposit.ACCOUNT_KIND.get(offer.asset_kind or "cash", "cash")
    fits = [a for a in customer.accounts if a.kind == wanted]
    same = [a for a in fits if a.currency == offer.currency]
    chosen = same or fits or list(customer.accounts)
    return chosen[0].account_id if chosen else ""


async def finish(
    session: KioskSession, offer: mobile_pb2.PhoneJobOffer, state: str, **fields: Any
) -> None:
    """The job's end: reported, forgotten; a job that did not complete ends the session."""
    jobs_of(session).clear()
    await end_job(session, offer.job_id, state, offer.service, **fields)
    if state != "done":
        await session.end("canceled" if state == "canceled" else "finished")


async def abandon_current(session: KioskSession, why: str) -> None:
    """The kiosk session ends (``why``) with a job on its screens that no transaction or
    call follows: the job ends with it (abandoned, or canceled by the customer here)."""
    jobs = jobs_of(session)
    offer = jobs.current
    if offer is None or jobs.followed:
        return
    jobs.clear()
    state, reason = ENDS.get(why, (ABANDONED, why[:64] or "session_ended"))
    log_event(log, "phone_job_abandoned", job_id=offer.job_id, reason=reason, by="terminal")
    await end_job(session, offer.job_id, state, offer.service, reason=reason)


def check_in_service(session: KioskSession) -> None:
    """Every tick: a terminal out of service ends the job on its screens (nothing has
    run: a started transaction is the engine's and is followed)."""
    jobs = jobs_of(session)
    service = getattr(session.agent, "service", None)
    if jobs.current is None or jobs.followed or jobs.ending or service is None:
        return
    if service.state in (ServiceState.IN_SERVICE, ServiceState.MAINTENANCE_PENDING):
        return
    jobs.ending = True
    log_event(log, "phone_job_out_of_service", job_id=jobs.current.job_id, state=service.state)
    session.run(session.end("out_of_service"), "out_of_service")


async def intend_transaction(
    session: KioskSession, offer: mobile_pb2.PhoneJobOffer, kind: str
) -> None:
    """Journaled before the engine is asked: a restart in between still finds the
    transaction (``phone_job_recovery.py``)."""
    db = db_of(session)
    if db is not None:
        await asyncio.to_thread(journal.intend, db, offer.job_id, kind)


async def follow_transaction(
    session: KioskSession, offer: mobile_pb2.PhoneJobOffer, kind: str, txn_id: str
) -> None:
    """From here the transaction decides how the job ends (journaled: after a restart too)."""
    jobs_of(session).followed = True
    db = db_of(session)
    if db is not None:
        await asyncio.to_thread(journal.link, db, offer.job_id, kind, txn_id)
