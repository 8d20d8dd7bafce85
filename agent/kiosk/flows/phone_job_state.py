"""The phone job this terminal is carrying out, and how it tells the server how it stands:
shared by the job flow (``phone_job.py``) and the runners that live beside it
(``phone_cheque.py``)."""

from __future__ import annotations

import logging
import weakref
from typing import TYPE_CHECKING, Any

from branchline.agent.kiosk.flows import deposit
from branchline.agent.uplink import UplinkUnavailable
from branchline.common.errors import DomainError, FailedPrecondition
from branchline.common.logs import log_event
from branchline.v1 import mobile_pb2

if TYPE_CHECKING:
    from branchline.agent.kiosk.session import KioskSession

log = logging.getLogger("branchline.agent.kiosk.phone_job")


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
    await report(session, offer.job_id, state, **fields)
    jobs_of(session).current = None
    if state != "done":
        await session.end("canceled" if state == "canceled" else "finished")
