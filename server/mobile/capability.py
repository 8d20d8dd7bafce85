"""The mobile capability: the Mobile API for the phone gateway, pairing on the TerminalLink,
the rotation that keeps each connected terminal's QR fresh, and the purge of old handles."""

from __future__ import annotations

from branchline.server.capability import Hub
from branchline.server.mobile.link import PairingPusher, purge_forever
from branchline.server.mobile.servicer import MobileServicer
from branchline.v1 import mobile_pb2, mobile_pb2_grpc

SERVICE_NAMES = (mobile_pb2.DESCRIPTOR.services_by_name["Mobile"].full_name,)


class MobileCapability:
    name = "mobile"

    def setup(self, hub: Hub) -> None:
        hub.add_servicer(
            mobile_pb2_grpc.add_MobileServicer_to_server,
            MobileServicer(hub.engine, hub.auth),
            *SERVICE_NAMES,
        )
        pusher = PairingPusher(hub.engine, hub.link, hub.settings.mobile_url)
        hub.handle("pairing_cancel", pusher.on_cancel)
        hub.handle("pairing_query", pusher.on_query)
        hub.on_connect(pusher.forget)
        hub.background("pairing_push", pusher.run)
        hub.background("pairing_purge", lambda: purge_forever(hub.engine))


MOBILE = MobileCapability()
