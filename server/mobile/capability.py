"""The mobile capability: the Mobile API for the phone gateway, pairing on the TerminalLink,
the rotation that keeps each connected terminal's QR fresh, the purge of old handles, and
phones' jobs forwarded to their terminal (``job_link``) and ended as abandoned when their
terminal cannot end them (``job_sweep``).

``cheque_book`` is listed only when an earlier capability provides ``cheques`` (the cheque
sale); jobs signed in at the bank need the PIN capability's customer sessions (``--hsm``);
a job's recordings are watched through the ``recordings`` capability's service."""

from __future__ import annotations

from datetime import timedelta

from branchline.server.capability import Hub
from branchline.server.delivery.bus import TOPIC_JOBS, TOPIC_PAIRING, wake_local
from branchline.server.mobile.job_link import JobPusher
from branchline.server.mobile.job_sweep import sweep_forever
from branchline.server.mobile.link import PairingPusher, purge_forever
from branchline.server.mobile.servicer import MobileServicer
from branchline.v1 import mobile_pb2, mobile_pb2_grpc

CHEQUE_ONLY = frozenset({"cheque_book"})
SERVICE_NAMES = (mobile_pb2.DESCRIPTOR.services_by_name["Mobile"].full_name,)


class MobileCapability:
    name = "mobile"

    def setup(self, hub: Hub) -> None:
        withheld = frozenset() if hub.optional("cheques") is not None else CHEQUE_ONLY
        verifier = hub.optional("pin_verifier")
        bus = hub.optional("bus")
        jobs = JobPusher(
            hub.engine,
            hub.link,
            lambda: verifier.sessions if verifier is not None else None,
            bus=bus,
        )
        pusher = PairingPusher(hub.engine, hub.link, hub.settings.mobile_url, bus=bus)
        hub.add_servicer(
            mobile_pb2_grpc.add_MobileServicer_to_server,
            MobileServicer(
                hub.engine,
                hub.auth,
                withheld=withheld,
                recordings=hub.optional("recordings"),
                applier=hub.link.applier,
                # A phone acting through this replica wakes its pushers at once (other
                # replicas hear it through the bus's signal in the same transaction).
                on_pairing=wake_local(bus, TOPIC_PAIRING),
                on_job=wake_local(bus, TOPIC_JOBS),
            ),
            *SERVICE_NAMES,
        )
        hub.handle("phone_job_update", jobs.on_update)
        if bus is not None:  # a terminal registering here gets its waiting jobs at once
            hub.on_connect(bus.wake_on_connect(TOPIC_JOBS))
        hub.background("phone_job_push", jobs.run)
        # Jobs their terminal can no longer end (offline, or the phone's pairing ended).
        grace = timedelta(seconds=hub.settings.phone_job_offline_grace)
        hub.background(
            "phone_job_sweep", lambda: sweep_forever(hub.engine, hub.link.applier, grace)
        )
        hub.handle("pairing_cancel", pusher.on_cancel)
        hub.handle("pairing_query", pusher.on_query)
        hub.on_connect(pusher.forget)
        hub.background("pairing_push", pusher.run)
        hub.background("pairing_purge", lambda: purge_forever(hub.engine))


MOBILE = MobileCapability()
