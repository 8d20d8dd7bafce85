"""The metrics capability: ``--metrics-listen HOST:PORT`` serves Prometheus text format.

First in ``CAPABILITIES``, so it can ``provide("metrics", ...)`` the instruments to the
capabilities after it (``pin`` meters the HSM); None when metrics are off, and then
nothing is counted or timed anywhere. It registers a TerminalLink message observer (the
link latency histogram) and a background task serving the endpoint on a socket bound
during setup, so a bad address stops the server from starting.
"""

from __future__ import annotations

import asyncio
import logging

from branchline.common.errors import InvalidArgument
from branchline.common.logs import log_event
from branchline.common.metrics_http import bind_socket, parse_listen, serve_metrics
from branchline.server.capability import Hub, StartupError
from branchline.server.metrics.collector import DatabaseCollector
from branchline.server.metrics.instruments import ApplierCollector, ServerMetrics

log = logging.getLogger("branchline.server.metrics")


class MetricsCapability:
    name = "metrics"

    def setup(self, hub: Hub) -> None:
        listen: str | None = getattr(hub.settings, "metrics_listen", None)
        if listen is None:
            hub.provide("metrics", None)
            return
        try:
            host, port = parse_listen("--metrics-listen", listen)
            sock = bind_socket(host, port)
        except InvalidArgument as exc:
            raise StartupError(str(exc)) from None
        except OSError as exc:
            raise StartupError(f"--metrics-listen: cannot bind {listen}: {exc}") from None
        hub.on_stop(sock.close)
        metrics = ServerMetrics()
        metrics.registry.register(
            DatabaseCollector(hub.engine, hub.settings.replica, hub.link.connected_terminals)
        )
        hub.link.observe_messages(metrics.link_message)
        metrics.count_statements(hub.engine)
        metrics.registry.register(ApplierCollector(hub.link.applier))
        hub.provide("metrics", metrics)

        async def serve() -> None:
            endpoint = await serve_metrics(metrics.registry, sock)
            log_event(log, "metrics_listening", url=endpoint.url)
            print(f"branchline-server metrics on {endpoint.url}", flush=True)
            try:
                await asyncio.Event().wait()
            finally:
                await endpoint.stop()

        hub.background("endpoint", serve)


METRICS = MetricsCapability()
