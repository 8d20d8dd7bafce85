"""The fleet capability: the Fleet API and the heartbeat sweep."""

from __future__ import annotations

from branchline.server.capability import Hub
from branchline.server.fleet.servicer import FleetServicer
from branchline.server.link import sweep_stale
from branchline.v1 import fleet_pb2, fleet_pb2_grpc

SERVICE_NAMES = (fleet_pb2.DESCRIPTOR.services_by_name["Fleet"].full_name,)


class FleetCapability:
    name = "fleet"

    def setup(self, hub: Hub) -> None:
        hub.add_servicer(
            fleet_pb2_grpc.add_FleetServicer_to_server,
            FleetServicer(hub.engine, hub.auth, hub.optional("bus")),
            *SERVICE_NAMES,
        )
        timeout = hub.settings.heartbeat_timeout
        hub.background("heartbeat_sweep", lambda: sweep_stale(hub.link, timeout))


FLEET = FleetCapability()
