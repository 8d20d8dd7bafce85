"""The agent's Prometheus endpoint (``[metrics] listen``, loopback only).

Everything is read at scrape time from what the agent already holds: its device owners'
snapshots, the outbox in ``journal.db``, the uplink's connection. Nothing on a device's
or a transaction's path is touched.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from branchline.common.config_reader import SectionReader
from branchline.common.errors import InvalidArgument
from branchline.common.metrics_http import is_loopback_host, parse_listen
from branchline.drivers.base import DeviceStatus

if TYPE_CHECKING:
    from branchline.agent.daemon import Agent


@dataclass(frozen=True)
class MetricsSettings:
    """``[metrics]``: ``listen = "127.0.0.1:9464"``; absent, no endpoint."""

    listen: str | None = None

    @property
    def host_port(self) -> tuple[str, int]:
        assert self.listen is not None
        return parse_listen("metrics.listen", self.listen)


def read_metrics(reader: SectionReader) -> MetricsSettings:
    listen = reader.get_str("listen")
    try:
        host, _ = parse_listen("listen", listen)
    except InvalidArgument as exc:
        raise reader.error("listen", exc.message) from None
    if not is_loopback_host(host):
        raise reader.error(
            "listen", f"the metrics endpoint is served on loopback only, not {host!r}"
        )
    reader.finish()
    return MetricsSettings(listen=listen)


class AgentCollector(Collector):
    def __init__(self, agent: Agent) -> None:
        self._agent = agent

    def describe(self) -> list[object]:
        return []

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        agent = self._agent
        terminal = agent.config.terminal.terminal_id
        devices = GaugeMetricFamily(
            "branchline_agent_devices",
            "This terminal's devices by kind and status (1 for the current status, else 0)",
            labels=["terminal", "kind", "status"],
        )
        for snapshot in agent.device_snapshots():
            for status in DeviceStatus:
                current = 1.0 if snapshot.status == status else 0.0
                devices.add_metric([terminal, snapshot.name, status.value], current)
        yield devices

        stats = agent.store.outbox.stats()
        depth = GaugeMetricFamily(
            "branchline_outbox_messages",
            "Messages in this terminal's outbox not yet acknowledged by the server",
            labels=["terminal"],
        )
        depth.add_metric([terminal], stats.pending)
        yield depth
        age = GaugeMetricFamily(
            "branchline_outbox_oldest_age_seconds",
            "How long the oldest unacknowledged outbox message has waited (0 when none)",
            labels=["terminal"],
        )
        age.add_metric([terminal], stats.oldest_age_seconds)
        yield age

        removed = agent.retention.removed
        retention = CounterMetricFamily(
            "branchline_journal_retention_removed",
            "Finished transactions and acknowledged outbox messages the journal retention "
            "deleted from journal.db since the agent started",
            labels=["terminal", "what"],
        )
        retention.add_metric([terminal, "transactions"], removed.transactions)
        retention.add_metric([terminal, "messages"], removed.messages)
        yield retention

        uplink = GaugeMetricFamily(
            "branchline_agent_uplink_connected",
            "1 while the TerminalLink stream to the server is up",
            labels=["terminal"],
        )
        uplink.add_metric([terminal], 1.0 if agent.uplink.connected else 0.0)
        yield uplink

        recordings = GaugeMetricFamily(
            "branchline_recordings_pending_upload",
            "Recordings on this terminal not yet uploaded (0 until recordings land)",
            labels=["terminal"],
        )
        # The recordings branch replaces this 0 with its upload queue's length.
        recordings.add_metric([terminal], 0.0)
        yield recordings


def agent_registry(agent: Agent) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(AgentCollector(agent))
    return registry
