"""After an agent restart: the phone jobs the last run left unfinished end here, once.

The journal (``phone_job_journal.py``) says what each one had reached. A job whose end was
decided is sent again; a job that started a transaction ends as the transaction did, once
the engine has recovered it (the engine's own recovery: a host-approved withdrawal not paid
out is reversed there, exactly as for a transaction started at the terminal): ``done`` with
its receipt reference when it completed, else ``abandoned`` (``agent_restarted``); a job
that had started nothing is ``abandoned`` (``agent_restarted``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from branchline.agent.cheques import customer as cheque_customer
from branchline.agent.cheques import machine as cheque_machine
from branchline.agent.journal.db import CorruptRecord
from branchline.agent.journal.txjournal import UnknownTransaction
from branchline.agent.kiosk.flows import phone_job_journal as journal
from branchline.agent.kiosk.flows.phone_job_state import ABANDONED, db_of, deliver
from branchline.agent.tube import customer as tube_customer
from branchline.agent.tube import machines as tube_machines
from branchline.common.logs import log_event
from branchline.v1 import mobile_pb2

if TYPE_CHECKING:
    from branchline.agent.kiosk.session import KioskSession

log = logging.getLogger("branchline.agent.kiosk.phone_job")

RESTARTED = "agent_restarted"
UNRECOVERABLE = "transaction_unrecoverable"
POLL_SECONDS = 0.5


def start(session: KioskSession) -> None:
    """Recover the jobs left in the journal, beside the session (needs a running loop)."""
    if db_of(session) is None:
        return
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    session.keep(asyncio.ensure_future(recover_left(session)))


async def recover_left(session: KioskSession) -> None:
    db = db_of(session)
    assert db is not None
    for job in await asyncio.to_thread(journal.left, db):
        try:
            await _recover(session, job)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # one bad row must not keep the others from ending
            log.error("phone job %s not recovered", job.job_id, exc_info=exc)


async def _recover(session: KioskSession, job: journal.JournaledJob) -> None:
    db = db_of(session)
    assert db is not None
    update = job.final
    if update is None:
        update = await _outcome(session, job)
        await asyncio.to_thread(journal.decide, db, update, job.service)
        update = await asyncio.to_thread(journal.final, db, job.job_id) or update
    log_event(
        log, "phone_job_recovered", job_id=job.job_id, state=update.state, reason=update.reason
    )
    await deliver(session, update)


async def _outcome(session: KioskSession, job: journal.JournaledJob) -> mobile_pb2.PhoneJobUpdate:
    """How the job ends, from its transaction when it had started one."""
    abandoned = mobile_pb2.PhoneJobUpdate(job_id=job.job_id, state=ABANDONED, reason=RESTARTED)
    completed: tuple[str, ...]
    if job.txn_kind == "tube":
        engine: Any = session.agent.tube
        completed = (tube_machines.COMPLETED, tube_machines.HANDED_TO_TELLER)
    elif job.txn_kind == "cheque":
        engine = session.agent.cheques
        completed = (cheque_machine.COMPLETED,)
    else:
        return abandoned
    txn_id = job.txn_id or await _begun_for(session, engine, job)
    if not txn_id:  # killed before the engine journaled anything: nothing began
        return abandoned
    live = await _finished(session, engine, txn_id)
    if live is None:
        abandoned.reason = UNRECOVERABLE
        return abandoned
    if live.stage not in completed:
        log_event(log, "phone_job_transaction_ended", job_id=job.job_id, stage=live.stage)
        return abandoned
    if job.txn_kind == "tube":
        reference = tube_customer.view(engine, live).receipt_reference or ""
    else:
        reference = str(cheque_customer.view(engine, live)["reference"])
    return mobile_pb2.PhoneJobUpdate(job_id=job.job_id, state="done", receipt_reference=reference)


async def _begun_for(session: KioskSession, engine: Any, job: journal.JournaledJob) -> str:
    """The transaction the job asked for when the agent died before linking it: the first
    of the engine's kinds begun since (one customer, one transaction at a time)."""
    db = db_of(session)
    assert db is not None
    begun = await asyncio.to_thread(journal.begun_since, db, job.updated_at)
    return next((txn_id for txn_id, kind in begun if engine.owns(kind)), "")


async def _finished(session: KioskSession, engine: Any, txn_id: str) -> Any:
    """The transaction once the engine has brought it to its end; None when it cannot (no
    such record, or one damaged: the engine leaves those to people)."""
    store = session.agent.store
    while True:
        try:
            txn = await asyncio.to_thread(store.txjournal.get, txn_id)
        except (UnknownTransaction, CorruptRecord):
            return None
        if txn.problem:
            return None
        if txn.finished:
            return engine.get(txn_id)
        await asyncio.sleep(POLL_SECONDS)
