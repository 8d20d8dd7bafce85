"""The server's event-time instruments: counters and histograms bumped where things happen.

Each ``ServerMetrics`` owns its registry (never the global one). Hot paths pay a
``perf_counter`` pair and one histogram observation; gauges that a database already knows
are read at scrape time by ``collector.DatabaseCollector`` instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

T = TypeVar("T")

# TerminalLink handling is milliseconds on a quiet server, seconds when saturated.
LINK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# An HSM command is a local computation (soft) or a TCP round trip (payShield).
HSM_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
# Outcomes a cheque-book sale ends in, pre-declared so the series read 0 until that
# capability lands and counts them.
CHEQUE_OUTCOMES = ("completed", "refused", "canceled")


class ServerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.link_message_seconds = Histogram(
            "branchline_link_message_seconds",
            "Time to handle one TerminalLink message from a terminal, by message body; "
            "_count is the number of messages",
            ["body"],
            buckets=LINK_BUCKETS,
            registry=self.registry,
        )
        self.link_refused = Counter(
            "branchline_link_requests_refused",
            "TerminalLink requests answered with a RequestError, by body and code",
            ["body", "code"],
            registry=self.registry,
        )
        self.hsm_operations = Counter(
            "branchline_hsm_operations",
            "HSM commands by operation and outcome (ok, or the HSM's error code)",
            ["operation", "outcome"],
            registry=self.registry,
        )
        self.hsm_seconds = Histogram(
            "branchline_hsm_operation_seconds",
            "Time an HSM command took, by operation",
            ["operation"],
            buckets=HSM_BUCKETS,
            registry=self.registry,
        )
        self.cheque_transactions = Counter(
            "branchline_cheque_transactions",
            "Cheque-book sales by outcome (0 until the cheques capability counts them)",
            ["outcome"],
            registry=self.registry,
        )
        for outcome in CHEQUE_OUTCOMES:
            self.cheque_transactions.labels(outcome=outcome)
        self.sql_statements = Counter(
            "branchline_sql_statements",
            "SQL statements the server sent to its database (BEGIN, COMMIT and savepoints "
            "included); divided by work done it is the statements per message or withdrawal",
            registry=self.registry,
        )

    def count_statements(self, engine: Any) -> None:
        """Count every statement ``engine`` executes (a SQLAlchemy event: a few µs each)."""
        from sqlalchemy import event

        from branchline.server.storage.engine import count_raw_statements

        counter = self.sql_statements

        def executed(*_args: Any) -> None:
            counter.inc()

        def committed(*_args: Any) -> None:
            counter.inc()

        event.listen(engine, "before_cursor_execute", executed)
        event.listen(engine, "commit", committed)
        count_raw_statements(engine, counter.inc)

    def link_message(self, body: str, seconds: float, refused_code: str | None) -> None:
        self.link_message_seconds.labels(body=body).observe(seconds)
        if refused_code is not None:
            self.link_refused.labels(body=body, code=refused_code).inc()

    def timed_hsm(self, operation: str, call: Callable[[], T]) -> T:
        started = time.perf_counter()
        outcome = "ok"
        try:
            return call()
        except Exception as exc:
            # HsmError carries a stable code; anything else is the backend failing.
            outcome = str(getattr(exc, "code", "") or type(exc).__name__)
            raise
        finally:
            self.hsm_seconds.labels(operation=operation).observe(time.perf_counter() - started)
            self.hsm_operations.labels(operation=operation, outcome=outcome).inc()


class MeteredHsm:
    """An HSM that counts and times every command, delegating all else to ``inner``."""

    # Commands: everything the HSM computes; administration (keys, diagnostics) is not timed.
    OPERATIONS = frozenset(
        {
            "translate_pin_dukpt_to_zpk",
            "translate_pin_tpk_to_zpk",
            "verify_pin_dukpt",
            "generate_pvv",
            "generate_ibm3624_offset",
            "derive_initial_key",
        }
    )

    def __init__(self, inner: Any, metrics: ServerMetrics) -> None:
        self._inner = inner
        self._metrics = metrics

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        if name not in self.OPERATIONS:
            return value

        def metered(*args: Any, **kwargs: Any) -> Any:
            return self._metrics.timed_hsm(name, lambda: value(*args, **kwargs))

        return metered


class ApplierCollector(Collector):
    """The group-commit applier's figures, read at scrape time from its counters."""

    def __init__(self, applier: Any) -> None:  # branchline.server.applier.Applier
        self._applier = applier

    def describe(self) -> list[Any]:
        return []  # collected at scrape time only

    def collect(self) -> Iterator[Any]:
        stats = self._applier.stats
        waiting = GaugeMetricFamily(
            "branchline_applier_waiting",
            "TerminalLink messages waiting for the group-commit applier",
        )
        waiting.add_metric([], self._applier.waiting)
        yield waiting
        for name, value, meaning in (
            ("batches", stats.batches, "batches the applier committed (or tried to)"),
            ("units", stats.units, "messages and other units of work it applied"),
            ("failed_units", stats.failed_units, "units rolled back alone (refused or failed)"),
            ("failed_commits", stats.failed_commits, "batch commits that failed"),
            ("refused", stats.refused, "messages refused with server_busy (queue full)"),
        ):
            family = CounterMetricFamily(f"branchline_applier_{name}", f"The applier's {meaning}")
            family.add_metric([], value)
            yield family
