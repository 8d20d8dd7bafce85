"""The dispatch capabilities: cross-branch tasks, and video-teller calls on top of them.

Tasks provide ``dispatch_service`` (the queue calls are routed through); calls need it and
``pin_translator`` (PIN blocks a teller asks for; None without an HSM).
"""

from __future__ import annotations

from datetime import timedelta

from branchline.server.capability import Hub, StartupError
from branchline.server.dispatch import call_servicer
from branchline.server.dispatch import servicer as dispatch
from branchline.server.dispatch.calls import CallService
from branchline.server.dispatch.tasks import DispatchService, retention
from branchline.v1 import calls_pb2_grpc

# Materials' retention is in days: an hourly sweep deletes within an hour of the limit.
RETENTION_SWEEP_SECONDS = 3600.0
MAX_RETENTION_DAYS = 36600


def _retention(days: float) -> timedelta:
    if not 0 < days <= MAX_RETENTION_DAYS:
        raise StartupError(
            f"--material-retention-days: more than 0, at most {MAX_RETENTION_DAYS}, got {days:g}"
        )
    return timedelta(days=days)


def _sweep_interval(offer_timeout: float) -> float:
    return min(1.0, offer_timeout / 4)


class DispatchTasksCapability:
    name = "dispatch"

    def setup(self, hub: Hub) -> None:
        settings = hub.settings
        service = DispatchService(
            hub.engine,
            offer_timeout=settings.offer_timeout,
            strategy=settings.routing_strategy,
            max_material_bytes=settings.max_material_bytes,
            material_retention=_retention(settings.material_retention_days),
        )
        hub.provide("dispatch_service", service)
        dispatch.add_dispatch_services(
            hub.server, service, hub.auth, hub.engine, hub.optional("bus"), hub.link.applier
        )
        hub.service_names.extend(dispatch.SERVICE_NAMES)
        interval = _sweep_interval(settings.offer_timeout)
        hub.background("offer_sweep", lambda: dispatch.sweep(service, interval, hub.link.applier))
        hub.background(
            "material_retention",
            lambda: retention.sweep_forever(service, RETENTION_SWEEP_SECONDS, hub.link.applier),
        )


class CallsCapability:
    name = "calls"

    def setup(self, hub: Hub) -> None:
        settings = hub.settings
        service = CallService(
            hub.require("dispatch_service"),
            translate_pin=hub.require("pin_translator"),
            ring_timeout=settings.offer_timeout,
        )
        hub.add_servicer(
            calls_pb2_grpc.add_CallsServicer_to_server,
            call_servicer.CallsServicer(service, hub.auth, hub.optional("bus"), hub.link.applier),
            *call_servicer.SERVICE_NAMES,
        )
        # CallLink registers its TerminalLink handlers and connect hook on the link itself.
        call_link = call_servicer.CallLink(service, hub.link, hub.engine, hub.optional("bus"))
        hub.background("link", call_link.run)
        interval = _sweep_interval(settings.offer_timeout)
        hub.background(
            "ring_sweep", lambda: call_servicer.sweep(service, interval, hub.link.applier)
        )


DISPATCH_TASKS = DispatchTasksCapability()
CALLS = CallsCapability()
