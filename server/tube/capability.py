"""The tube capability: tube transactions on the TerminalLink stream, the back office's
TubeDesk API and the stale-transaction sweep.

Needs ``ledger`` and ``pin_verifier`` (a withdrawal is made inside a customer session)."""

from __future__ import annotations

from datetime import timedelta

from branchline.server.capability import Hub
from branchline.server.tube import servicer as tube
from branchline.server.tube.link import install_tube
from branchline.server.tube.service import TubeService
from branchline.v1 import tube_pb2_grpc


class TubeCapability:
    name = "tube"

    def setup(self, hub: Hub) -> None:
        stale_minutes = hub.settings.tube_stale_minutes
        verifier = hub.require("pin_verifier")
        service = TubeService(
            hub.engine,
            hub.require("ledger"),
            verifier.sessions if verifier is not None else None,
            stale_after=timedelta(minutes=stale_minutes),
        )
        bus = hub.optional("bus")
        install_tube(hub.link, service, bus)
        hub.add_servicer(
            tube_pb2_grpc.add_TubeDeskServicer_to_server,
            tube.TubeDeskServicer(service, hub.auth, hub.link.applier, bus),
            *tube.SERVICE_NAMES,
        )
        # Often enough that a stale transaction is reported within a tenth of the limit.
        interval = min(60.0, stale_minutes * 6)
        hub.background("stale_sweep", lambda: tube.sweep(service, interval, hub.link.applier))


TUBE = TubeCapability()
