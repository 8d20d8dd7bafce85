"""The cheques capability: the cheque-book sale on the TerminalLink stream (bodies 150-156),
the staff's ChequeDesk API (stock, faces, codes, alerts, the branch display) and the sweep
(face captures and ID card photos past their retention; purchases left unfinished get an
incident).

Needs ``pin_verifier`` (the card + PIN purchase method uses its customer sessions); the fee
is posted in the ledger's tables inside the sale's own transaction."""

from __future__ import annotations

import asyncio
import functools
import logging

from branchline.server.applier import Applier
from branchline.server.capability import Hub
from branchline.server.cheques.core import ChequeCore
from branchline.server.cheques.identify import sweep_images
from branchline.server.cheques.link import install_cheques
from branchline.server.cheques.servicer import SERVICE_NAMES, ChequeDeskServicer
from branchline.server.cheques.settle import sweep_stale
from branchline.v1 import cheques_pb2_grpc

log = logging.getLogger("branchline.server.cheques")

SWEEP_SECONDS = 300.0


async def sweep(core: ChequeCore, interval: float, applier: Applier) -> None:
    while True:
        try:
            # Through the link's applier (housekeeping priority): on SQLite a write of its own
            # would wait on the applier's batch for the write lock, and fail under saturation.
            purged = await applier.apply(functools.partial(sweep_images, core), priority=True)
            stale = await applier.apply(functools.partial(sweep_stale, core), priority=True)
            # Committed: the terminals learn their purchases' incidents.
            await asyncio.to_thread(core.changed_by_others, stale)
            if purged or stale:
                log.info("cheque sweep: %d images purged, %d stale purchases", purged, len(stale))
        except Exception:
            log.exception("cheque image sweep failed")
        await asyncio.sleep(interval)


class ChequesCapability:
    name = "cheques"

    def setup(self, hub: Hub) -> None:
        verifier = hub.require("pin_verifier")
        core = ChequeCore(hub.engine, verifier.sessions if verifier is not None else None)
        install_cheques(hub.link, core)
        hub.add_servicer(
            cheques_pb2_grpc.add_ChequeDeskServicer_to_server,
            ChequeDeskServicer(core, hub.auth),
            *SERVICE_NAMES,
        )
        hub.provide("cheques", core)
        hub.background("sweep", lambda: sweep(core, SWEEP_SECONDS, hub.link.applier))


CHEQUES = ChequesCapability()
