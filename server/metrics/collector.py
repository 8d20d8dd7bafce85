"""Gauges the database already knows, read at scrape time (always right, no hot-path cost).

One scrape runs a handful of grouped ``COUNT`` queries on indexed columns; the fleet,
tube and dispatch tables are read, never written, here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Connection, Engine, func, select

from branchline.server.dispatch.call_schema import calls
from branchline.server.dispatch.model import UNASSIGNED_STATES
from branchline.server.dispatch.schema import tasks
from branchline.server.storage.schema import devices, terminals
from branchline.server.tube.schema import tube_incidents, tube_transactions

log = logging.getLogger("branchline.server.metrics")

# A tube transaction's final states: its outcome.
TUBE_OUTCOMES = ("posted", "returned", "reversed", "canceled", "handed_to_teller")
TUBE_KINDS = ("deposit", "withdrawal")
CALL_QUEUED = "queued"

Family = GaugeMetricFamily | CounterMetricFamily


def _age_seconds(then: datetime | None, now: datetime) -> float:
    if then is None:
        return 0.0
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    return max(0.0, (now - then).total_seconds())


class DatabaseCollector(Collector):
    """``connected``: the terminals whose stream is on this replica (the link knows them)."""

    def __init__(self, engine: Engine, replica: str, connected: Callable[[], list[str]]) -> None:
        self._engine = engine
        self._replica = replica
        self._connected = connected

    def describe(self) -> list[object]:
        # Registering must not query the database; collect() does that per scrape.
        return []

    def collect(self) -> Iterator[Family]:
        connected = GaugeMetricFamily(
            "branchline_terminals_connected",
            "Terminals whose TerminalLink stream is on this replica",
            labels=["replica"],
        )
        connected.add_metric([self._replica], len(self._connected()))
        yield connected
        with self._engine.connect() as conn:
            yield from _fleet(conn)
            yield from _tube(conn)
            yield from _incidents(conn, datetime.now(UTC))
            yield from _queues(conn)


def _fleet(conn: Connection) -> Iterator[Family]:
    online = GaugeMetricFamily(
        "branchline_terminal_online",
        "1 while the terminal is online (registered and heartbeating), else 0",
        labels=["terminal", "branch"],
    )
    for terminal_id, branch, is_online in conn.execute(
        select(terminals.c.terminal_id, terminals.c.branch, terminals.c.online)
    ):
        online.add_metric([terminal_id, branch], 1.0 if is_online else 0.0)
    yield online

    by_status = GaugeMetricFamily(
        "branchline_devices",
        "Devices of online terminals by kind (printer, card_reader, ...) and status",
        labels=["kind", "status"],
    )
    rows = conn.execute(
        select(devices.c.name, devices.c.status, func.count())
        .select_from(devices.join(terminals))
        .where(terminals.c.online.is_(True))
        .group_by(devices.c.name, devices.c.status)
    )
    for kind, status, count in rows:
        by_status.add_metric([kind, status], count)
    yield by_status


def _tube(conn: Connection) -> Iterator[Family]:
    rows = conn.execute(
        select(tube_transactions.c.kind, tube_transactions.c.state, func.count()).group_by(
            tube_transactions.c.kind, tube_transactions.c.state
        )
    )
    # Every outcome of both kinds is exported from the start, so rate() sees the first one.
    ended = {(kind, outcome): 0 for kind in TUBE_KINDS for outcome in TUBE_OUTCOMES}
    open_counts: dict[str, int] = {}
    for kind, state, count in rows:
        if state in TUBE_OUTCOMES:
            ended[(kind, state)] = ended.get((kind, state), 0) + count
        else:
            open_counts[state] = open_counts.get(state, 0) + count
    outcomes = CounterMetricFamily(
        "branchline_tube_transactions",
        "Tube transactions that ended, by kind (deposit, withdrawal) and outcome",
        labels=["kind", "outcome"],
    )
    for (kind, outcome), count in sorted(ended.items()):
        outcomes.add_metric([kind, outcome], count)
    yield outcomes
    open_txns = GaugeMetricFamily(
        "branchline_tube_transactions_open",
        "Tube transactions not yet ended, by state",
        labels=["state"],
    )
    for state, count in sorted(open_counts.items()):
        open_txns.add_metric([state], count)
    yield open_txns


def _incidents(conn: Connection, now: datetime) -> Iterator[Family]:
    incidents = GaugeMetricFamily(
        "branchline_incidents_open",
        "Unresolved tube incidents by kind (lost carrier, dispute, stale, ...)",
        labels=["kind"],
    )
    rows = conn.execute(
        select(tube_incidents.c.kind, func.count(), func.min(tube_incidents.c.opened_at))
        .where(tube_incidents.c.resolved_at.is_(None))
        .group_by(tube_incidents.c.kind)
    )
    oldest_at: datetime | None = None
    for kind, count, opened_at in rows:
        incidents.add_metric([kind], count)
        if opened_at is not None and (oldest_at is None or opened_at < oldest_at):
            oldest_at = opened_at
    yield incidents
    oldest = GaugeMetricFamily(
        "branchline_incident_oldest_open_age_seconds",
        "How long the oldest unresolved incident has been open (0 when none is)",
    )
    oldest.add_metric([], _age_seconds(oldest_at, now))
    yield oldest


def _queues(conn: Connection) -> Iterator[Family]:
    task_queue = GaugeMetricFamily(
        "branchline_dispatch_task_queue_length",
        "Cross-branch tasks waiting for a teller (queued or at the lobby), by branch",
        labels=["branch"],
    )
    rows = conn.execute(
        select(tasks.c.target_branch, func.count())
        .where(tasks.c.state.in_(UNASSIGNED_STATES))
        .group_by(tasks.c.target_branch)
    )
    for branch, count in rows:
        task_queue.add_metric([branch], count)
    yield task_queue

    call_queue = GaugeMetricFamily(
        "branchline_call_queue_length",
        "Video-teller calls waiting for a teller, by branch",
        labels=["branch"],
    )
    rows = conn.execute(
        select(calls.c.branch, func.count())
        .where(calls.c.state == CALL_QUEUED)
        .group_by(calls.c.branch)
    )
    for branch, count in rows:
        call_queue.add_metric([branch], count)
    yield call_queue
