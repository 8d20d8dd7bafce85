"""Phones' jobs on the TerminalLink stream.

Server -> terminal: ``phone_job`` (131), pushed (ack_seq 0) by the replica holding the
terminal's stream — at once when the delivery bus's ``jobs`` topic says a job was stored
(through whichever replica the gateway reached), when the terminal registers, and every
``PUSH_INTERVAL`` as the backstop (on PostgreSQL the bus's) — again every ``REPUSH`` until
the terminal reports the job ``received``
(the terminal dedups on job_id, so a job is carried out once however often it arrives).
Before each push the terminal's live service list is checked again: a job whose service
the terminal no longer offers (out of service, a device lost) fails ``service_unavailable``
and is never sent.

Terminal -> server: ``phone_job_update`` (132), the job's progress, answered with
``phone_job_ack``.

A job authenticated at the bank carries a customer session for this terminal (the same
signed token a verified PIN gets, issued at push time) and the customer's accounts. The
agent keeps the token; the kiosk page never sees it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from branchline.common.logs import log_event
from branchline.server import fleet_registry as registry
from branchline.server.delivery.bus import TOPIC_JOBS, LocalBus, mark, wait_for_change
from branchline.server.link import PushRefused, TerminalLinkServicer
from branchline.server.mobile import jobs
from branchline.server.mobile.convert import phone_account
from branchline.server.mobile.schema import mobile_pairings
from branchline.server.mobile.services import service_list
from branchline.server.writes import apply_write
from branchline.v1 import mobile_pb2 as pb
from branchline.v1 import terminal_link_pb2 as link_pb

log = logging.getLogger("branchline.server.mobile.jobs")

PUSH_INTERVAL = 0.1
REPUSH = 2.0


def _now() -> datetime:
    return datetime.now(UTC)


def offer_of(
    engine: Engine, job: jobs.Job, sessions: Any, matching_code: str, now: datetime
) -> pb.PhoneJobOffer:
    body = job.body
    offer = pb.PhoneJobOffer(
        job_id=job.job_id,
        service=job.service,
        auth=job.auth,
        account_id=body.get("account_id", ""),
        asset_kind=body.get("asset_kind", ""),
        currency=body.get("currency", ""),
        amount=body.get("amount", ""),
        rate_version=int(body.get("rate_version", 0)),
        period_from=body.get("period_from", ""),
        period_to=body.get("period_to", ""),
        cheque_leaves=int(body.get("cheque_leaves", 0)),
        business_type=body.get("business_type", ""),
        pairing_id=job.pairing_id,
        matching_code=matching_code,
        needs_presence=job.needs_presence,
    )
    if job.auth == jobs.AUTH_AT_BANK:
        offer.customer_id = job.customer_id
        offer.session_token = sessions.issue(job.terminal_id, "", job.customer_id, now)
        offer.accounts.extend(
            phone_account(row) for row in jobs.customer_accounts(engine, job.customer_id)
        )
    return offer


class JobPusher:
    """Pushes each connected terminal's waiting jobs; records their progress."""

    def __init__(
        self,
        engine: Engine,
        link: TerminalLinkServicer,
        sessions: Callable[[], Any],
        clock: Callable[[], datetime] = _now,
        bus: LocalBus | None = None,
    ) -> None:
        self._engine = engine
        self._link = link
        self._bus = bus
        # Writes (a job refused before it is sent, its progress) join the link's batches.
        self._applier = getattr(link, "applier", None)
        # The customer sessions (the PIN capability's), looked up when needed: None without
        # --hsm, and then jobs signed in at the bank cannot be carried out.
        self._sessions = sessions
        self._clock = clock
        self._pushed: dict[str, float] = {}

    async def run(self, interval: float = PUSH_INTERVAL) -> None:
        while True:
            # A job stored while this round reads is looked at right after it.
            since = mark(self._bus, TOPIC_JOBS)
            try:
                await self.push_once()
            except Exception:  # the database may be briefly unreachable; keep going
                log.exception("phone job push failed")
            if self._pushed and self._bus is not None and self._bus.shared:
                # A job pushed and not yet received goes again within REPUSH, whatever
                # the bus's backstop.
                await self._bus.wait(TOPIC_JOBS, REPUSH, since)
            else:
                await wait_for_change(self._bus, TOPIC_JOBS, interval, since)

    async def push_once(self) -> None:
        connected = self._link.connected_terminals()
        if not connected:
            return
        # One query for every connected terminal, not a thread and a query each.
        waiting = await asyncio.to_thread(jobs.waiting_for, self._engine, connected)
        # Forget jobs no longer waiting (received, failed, or their terminal left).
        still = {job.job_id for found in waiting.values() for job in found}
        self._pushed = {k: v for k, v in self._pushed.items() if k in still}
        for terminal_id, found in waiting.items():
            for job in found:
                if time.monotonic() - self._pushed.get(job.job_id, -REPUSH) < REPUSH:
                    continue
                message = await apply_write(self._applier, self._prepare, job)
                if message is None:
                    continue
                try:
                    self._link.push(terminal_id, link_pb.ServerMessage(phone_job=message))
                except PushRefused as exc:
                    log_event(log, "phone_job_push_dropped", logging.DEBUG, why=str(exc))
                    continue
                self._pushed[job.job_id] = time.monotonic()
                log_event(log, "phone_job_pushed", terminal_id=terminal_id, job_id=job.job_id)

    def _prepare(self, job: jobs.Job) -> pb.PhoneJobOffer | None:
        """The offer to push, or None when the job was refused (never sent)."""
        now = self._clock()
        terminal = registry.get_terminal(self._engine, job.terminal_id)
        listed = service_list(terminal) if terminal is not None else None
        if listed is None or listed.unavailable_reason or job.service not in listed.services:
            jobs.fail_waiting(self._engine, job.job_id, "service_unavailable", now)
            log_event(log, "phone_job_refused", job_id=job.job_id, reason="service_unavailable")
            return None
        sessions = self._sessions()
        if job.auth == jobs.AUTH_AT_BANK and sessions is None:
            jobs.fail_waiting(self._engine, job.job_id, "bank_sessions_unavailable", now)
            return None
        with self._engine.connect() as conn:
            code = conn.execute(
                mobile_pairings.select().where(mobile_pairings.c.handle == job.pairing_id)
            ).first()
        matching = code.matching_code if code is not None and code.matching_code else ""
        return offer_of(self._engine, job, sessions, matching, now)

    async def on_update(
        self, terminal_id: str, message: link_pb.TerminalMessage
    ) -> link_pb.ServerMessage:
        update = message.phone_job_update
        progress = jobs.Progress(
            state=update.state,
            reason=update.reason,
            receipt_reference=update.receipt_reference,
            queue_position=update.queue_position,
            customer_id=update.customer_id,
            result=(
                {"statement": [_line(s) for s in update.statement]} if update.statement else {}
            ),
        )
        job = await apply_write(
            self._applier,
            jobs.advance,
            self._engine,
            terminal_id,
            update.job_id,
            progress,
            self._clock(),
        )
        if job.state != jobs.SUBMITTED:
            self._pushed.pop(job.job_id, None)
        log_event(log, "phone_job_progress", job_id=job.job_id, state=job.state)
        return link_pb.ServerMessage(
            ack_seq=message.seq, phone_job_ack=pb.PhoneJobAck(job_id=job.job_id, state=job.state)
        )


def _line(line: pb.PhoneStatementLine) -> dict[str, str]:
    return {
        "date": line.date,
        "description": line.description,
        "amount": line.amount,
        "balance": line.balance,
    }
