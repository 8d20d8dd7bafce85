"""The server's side of abandoned phone jobs: jobs their terminal can no longer tell about.

The terminal ends the jobs it knows (its journal: ``agent/kiosk/flows/phone_job_journal.py``).
The server ends, as ``abandoned``, only what the terminal cannot:

- ``terminal_offline``: the terminal has been offline (marked so by the heartbeat sweep)
  for ``offline_grace`` and the job has not yet moved value: not started (submitted up to
  confirming: the terminal runs nothing before the server has answered ``running``), or
  running a service that moves none (statements, the video teller). A running tube or
  cheque-book job is never ended here: its transaction decides, and only the terminal's
  journal knows how it ended (its recovery reports it when the terminal is back).
- ``pairing_ended``: the phone's pairing ended (canceled, or its session timed out) before
  anyone started the job at the terminal (submitted, received, ready).

Each is one guarded ``UPDATE`` (the state it was read in is in its ``WHERE``): a terminal's
report racing the sweep either lands first (the sweep then changes nothing) or finds the
job finished and is answered with that end, so an end is stored once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, false, or_, select, update

from branchline.common.logs import log_event
from branchline.server.mobile import jobs
from branchline.server.mobile.pairing import ENDED, PAIRED
from branchline.server.mobile.schema import mobile_jobs, mobile_pairings
from branchline.server.storage.engine import write_transaction
from branchline.server.storage.schema import terminals
from branchline.server.writes import apply_write

log = logging.getLogger("branchline.server.mobile.jobs")

SWEEP_INTERVAL = 5.0
# Offline this long (after the heartbeat sweep's own timeout) before its jobs are ended:
# a terminal that reconnects within it carries on.
OFFLINE_GRACE = timedelta(seconds=60)
TERMINAL_OFFLINE = "terminal_offline"
PAIRING_ENDED = "pairing_ended"
NOT_STARTED = ("submitted", "received", "ready")
BEFORE_RUNNING = (*NOT_STARTED, "authenticating", "confirming")
# Services whose running moves value: their transaction decides how the job ends.
MOVES_VALUE = ("tube_deposit", "tube_withdrawal", "cheque_book")


def _now() -> datetime:
    return datetime.now(UTC)


def _end(conn: Any, rows: list[Any], reason: str, now: datetime) -> list[str]:
    ended = []
    for row in rows:
        done = conn.execute(
            update(mobile_jobs)
            .where(mobile_jobs.c.job_id == row.job_id, mobile_jobs.c.state == row.state)
            .values(state=jobs.ABANDONED, reason=reason, queue_position=0, updated_at=now)
        )
        if done.rowcount == 1:
            ended.append(row.job_id)
    return ended


def sweep(engine: Engine, now: datetime, offline_grace: timedelta = OFFLINE_GRACE) -> list[str]:
    """End the jobs described above; the ids of those ended."""
    unfinished = mobile_jobs.c.state.not_in(jobs.FINISHED)
    offline = (
        select(mobile_jobs.c.job_id, mobile_jobs.c.state)
        .join(terminals, terminals.c.terminal_id == mobile_jobs.c.terminal_id)
        .where(
            unfinished,
            terminals.c.online == false(),
            terminals.c.last_seen_at < now - offline_grace,
            or_(
                mobile_jobs.c.state.in_(BEFORE_RUNNING),
                and_(mobile_jobs.c.state == "running", mobile_jobs.c.service.not_in(MOVES_VALUE)),
            ),
        )
    )
    pairing_gone = (
        select(mobile_jobs.c.job_id, mobile_jobs.c.state)
        .join(mobile_pairings, mobile_pairings.c.handle == mobile_jobs.c.pairing_id)
        .where(
            mobile_jobs.c.state.in_(NOT_STARTED),
            or_(
                mobile_pairings.c.state == ENDED,
                and_(
                    mobile_pairings.c.state == PAIRED,
                    mobile_pairings.c.session_expires_at <= now,
                ),
            ),
        )
    )
    with write_transaction(engine) as conn:
        ended = _end(conn, list(conn.execute(offline)), TERMINAL_OFFLINE, now)
        ended += _end(conn, list(conn.execute(pairing_gone)), PAIRING_ENDED, now)
    return ended


async def sweep_forever(
    engine: Engine,
    applier: Any,
    offline_grace: timedelta = OFFLINE_GRACE,
    interval: float = SWEEP_INTERVAL,
    clock: Callable[[], datetime] = _now,
) -> None:
    """``sweep`` every ``interval`` through the link's applier (it joins the write batches)."""
    while True:
        await asyncio.sleep(interval)
        try:
            ended = await apply_write(applier, sweep, engine, clock(), offline_grace)
        except Exception:  # the database may be briefly unreachable; keep going
            log.exception("phone job sweep failed")
            continue
        for job_id in ended:
            log_event(log, "phone_job_abandoned", job_id=job_id, by="server")
