"""``Receipts``: operators and tellers look a transaction up by its receipt's reference."""

from __future__ import annotations

import asyncio

import grpc
from sqlalchemy import Engine

from branchline.common.grpc_errors import refusals
from branchline.common.txref import parse_reference
from branchline.server.auth import OPERATOR, TELLER, Authorizer
from branchline.server.convert import timestamp
from branchline.server.ledger.lookup import TransactionRecord, lookup_transaction
from branchline.v1 import customer_info_pb2 as pb
from branchline.v1 import customer_info_pb2_grpc as pb_grpc


def record_to_pb(record: TransactionRecord) -> pb.LookupReferenceResult:
    return pb.LookupReferenceResult(
        reference=str(record.reference),
        terminal_id=record.reference.terminal_id,
        txn_id=record.reference.txn_id,
        entries=[
            pb.LedgerEntry(
                entry_id=e.entry_id,
                request_id=e.reference.request_id,
                kind=e.kind,
                description=e.description,
                posted_at=timestamp(e.posted_at),
                legs=[
                    pb.LedgerLeg(
                        account_id=leg.account_id,
                        currency=leg.currency,
                        amount=str(leg.amount),
                        balance_after=str(leg.balance_after),
                    )
                    for leg in e.legs
                ],
                reverses_entry_id=e.reverses_entry_id or 0,
                rate_version=e.rate_version or 0,
                hold_id=e.hold_id or "",
            )
            for e in record.entries
        ],
        holds=[
            pb.LedgerHold(
                hold_id=h.hold_id,
                request_id=h.reference.request_id,
                account_id=h.account_id,
                currency=h.currency,
                amount=str(h.amount),
                status=h.status,
                reason=h.reason or "",
            )
            for h in record.holds
        ],
    )


class ReceiptsServicer(pb_grpc.ReceiptsServicer):
    def __init__(self, engine: Engine, auth: Authorizer) -> None:
        self._engine = engine
        self._auth = auth

    @refusals
    async def LookupReference(
        self, request: pb.LookupReferenceRequest, context: grpc.aio.ServicerContext
    ) -> pb.LookupReferenceResult:
        await self._auth.identify(context, (OPERATOR, TELLER), "Receipts.LookupReference")
        reference = parse_reference(request.reference)  # BadReference names the field
        record = await asyncio.to_thread(lookup_transaction, self._engine, reference)
        return record_to_pb(record)
