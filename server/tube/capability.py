"""The tube capability: tube transactions on the TerminalLink stream, the back office's
TubeDesk API (with the back office's video signalling, ``desk_link``) and the
stale-transaction sweep.

Needs ``ledger`` and ``pin_verifier`` (a withdrawal is made inside a customer session)."""

from __future__ import annotations

from datetime import timedelta

from branchline.server.capability import Hub
from branchline.server.delivery.bus import TOPIC_DESK
from branchline.server.tube import desk_link
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
        desk_link.install_desk_video(hub.link, service)
        hub.add_servicer(
            tube_pb2_grpc.add_TubeDeskServicer_to_server,
            desk_link.TubeDeskVideoServicer(service, hub.auth, hub.link.applier, bus),
            *tube.SERVICE_NAMES,
        )
        # Often enough that a stale transaction is reported within a tenth of the limit.
        interval = min(60.0, stale_minutes * 6)
        hub.background("stale_sweep", lambda: tube.sweep(service, interval, hub.link.applier))
        # The back office's video on the customer's screen (desk_video.py).
        if bus is not None:  # a terminal registering here gets the desk's signals at once
            hub.on_connect(bus.wake_on_connect(TOPIC_DESK))
        hub.background(
            "desk_video_push", lambda: desk_link.push_desk_signals(hub.link, service, bus=bus)
        )


TUBE = TubeCapability()
