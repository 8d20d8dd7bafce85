"""TubeCustomer: the customer's side of tube transactions on the agent's local socket.

Thin: each call is one function of ``customer.py``; refusals become gRPC statuses with the
stable code first (``not_your_account: account_id: ...``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from typing import TYPE_CHECKING

import grpc

from branchline.agent.tube import customer
from branchline.agent.tube import machines as m
from branchline.agent.tube.engine import Live, TubeRefused
from branchline.v1 import tube_pb2 as pb
from branchline.v1 import tube_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from branchline.agent.tube.engine import TubeEngine

STATUS_BY_KIND = {
    "invalid": grpc.StatusCode.INVALID_ARGUMENT,
    "not_found": grpc.StatusCode.NOT_FOUND,
    "refused": grpc.StatusCode.PERMISSION_DENIED,
    "precondition": grpc.StatusCode.FAILED_PRECONDITION,
    "unavailable": grpc.StatusCode.UNAVAILABLE,
}


class TubeCustomerServicer(pb_grpc.TubeCustomerServicer):
    def __init__(self, engine: TubeEngine) -> None:
        self._engine = engine

    async def _live(self, context: grpc.aio.ServicerContext, work: Awaitable[Live]) -> Live:
        try:
            return await work
        except TubeRefused as exc:
            await context.abort(STATUS_BY_KIND[exc.kind], f"{exc.code}: {exc.message}")
            raise  # abort raises; this keeps the type checker informed

    async def _view(self, context: grpc.aio.ServicerContext, work: Awaitable[Live]) -> pb.TubeView:
        return customer.view(self._engine, await self._live(context, work))

    async def StartDeposit(
        self, request: pb.StartTubeRequest, context: grpc.aio.ServicerContext
    ) -> pb.TubeView:
        return await self._view(context, customer.start(self._engine, request, m.DEPOSIT))

    async def StartWithdrawal(
        self, request: pb.StartTubeRequest, context: grpc.aio.ServicerContext
    ) -> pb.TubeView:
        return await self._view(context, customer.start(self._engine, request, m.WITHDRAWAL))

    async def SendCarrier(
        self, request: pb.TubeAction, context: grpc.aio.ServicerContext
    ) -> pb.TubeView:
        return await self._view(
            context, customer.send_carrier(self._engine, request.session_id, request.txn_id)
        )

    async def Decide(
        self, request: pb.DecideRequest, context: grpc.aio.ServicerContext
    ) -> pb.TubeView:
        return await self._view(
            context,
            customer.decide(self._engine, request.session_id, request.txn_id, request.decision),
        )

    async def ConfirmReceipt(
        self, request: pb.TubeAction, context: grpc.aio.ServicerContext
    ) -> pb.TubeView:
        return await self._view(
            context, customer.confirm_receipt(self._engine, request.session_id, request.txn_id)
        )

    async def Cancel(
        self, request: pb.TubeAction, context: grpc.aio.ServicerContext
    ) -> pb.TubeView:
        return await self._view(
            context, customer.cancel(self._engine, request.session_id, request.txn_id)
        )

    async def _lookup(self, txn_id: str) -> Live:
        if not txn_id:
            raise TubeRefused("invalid", "invalid_argument", "txn_id: must not be empty")
        return self._engine.get(txn_id)

    async def GetTransaction(
        self, request: pb.TubeAction, context: grpc.aio.ServicerContext
    ) -> pb.TubeView:
        return await self._view(context, self._lookup(request.txn_id))

    async def Watch(
        self, request: pb.TubeAction, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.TubeView]:
        entry = await self._live(context, self._lookup(request.txn_id))
        while True:
            changed = entry.changed
            yield customer.view(self._engine, entry)
            if entry.finished:
                return
            await changed.wait()

    async def ListOpen(
        self, request: pb.ListOpenRequest, context: grpc.aio.ServicerContext
    ) -> pb.TubeViewList:
        return pb.TubeViewList(
            views=[
                customer.view(self._engine, live)
                for live in self._engine.live.values()
                if not live.finished
            ]
        )
