"""The ledger capability: the embedded core banking for the capabilities after it
(``ledger``), self-service statements on the TerminalLink stream and the Receipts API.

Needs ``pin_verifier`` (statements are given only inside a customer session)."""

from __future__ import annotations

from branchline.server.capability import Hub
from branchline.server.ledger.adapter import EmbeddedLedger
from branchline.server.ledger.receipts_service import ReceiptsServicer
from branchline.server.ledger.statement_link import statement_handler
from branchline.v1 import customer_info_pb2, customer_info_pb2_grpc

SERVICE_NAMES = (customer_info_pb2.DESCRIPTOR.services_by_name["Receipts"].full_name,)


class LedgerCapability:
    name = "ledger"

    def setup(self, hub: Hub) -> None:
        hub.provide("ledger", EmbeddedLedger(hub.engine))
        hub.handle("statement_request", statement_handler(hub.engine, hub.require("pin_verifier")))
        hub.add_servicer(
            customer_info_pb2_grpc.add_ReceiptsServicer_to_server,
            ReceiptsServicer(hub.engine, hub.auth),
            *SERVICE_NAMES,
        )


LEDGER = LedgerCapability()
