"""TubeCustomer: the customer's side of tube transactions on the agent's local socket.

Thin: each call is one function of ``customer.py``; ids are bounded here, and refusals end
the call in the one error model (``agent/refusal.py``): the status names the kind, the
message keeps the stable code first (``not_your_account: account_id: ...``), and the details
carry the field (BadRequest) and the code (ErrorInfo).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from typing import TYPE_CHECKING

import grpc

from branchline.agent.tube import customer
from branchline.agent.tube import machines as m
from branchline.agent.tube.engine import Live, TubeRefused
from branchline.common.errors import MAX_ID, check_text
from branchline.common.grpc_errors import refusals
from branchline.v1 import tube_pb2 as pb
from branchline.v1 import tube_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from branchline.agent.tube.engine import TubeEngine


def bounded(**ids: str) -> None:
    """Refuse an over-long id (empty ones are refused by name further in)."""
    for name, value in ids.items():
        check_text(name, value, max_len=MAX_ID, required=False)


class TubeCustomerServicer(pb_grpc.TubeCustomerServicer):
    def __init__(self, engine: TubeEngine) -> None:
        self._engine = engine

    async def _live(self, work: Awaitable[Live]) -> Live:
        try:
            return await work
        except TubeRefused as exc:
            raise exc.as_domain() from None

    async def _view(self, work: Awaitable[Live]) -> pb.TubeView:
        return customer.view(self._engine, await self._live(work))

    async def _action(self, request: pb.TubeAction, step: str) -> pb.TubeView:
        bounded(session_id=request.session_id, txn_id=request.txn_id)
        steps = {
            "send": customer.send_carrier,
            "confirm_receipt": customer.confirm_receipt,
            "cancel": customer.cancel,
        }
        return await self._view(steps[step](self._engine, request.session_id, request.txn_id))

    async def _start(self, request: pb.StartTubeRequest, kind: str) -> pb.TubeView:
        bounded(session_id=request.session_id, account_id=request.account_id)
        return await self._view(customer.start(self._engine, request, kind))

    @refusals
    async def StartDeposit(
        self, request: pb.StartTubeRequest, context: grpc.aio.ServicerContext
    ) -> pb.TubeView:
        return await self._start(request, m.DEPOSIT)

    @refusals
    async def StartWithdrawal(
        self, request: pb.StartTubeRequest, context: grpc.aio.ServicerContext
    ) -> pb.TubeView:
        return await self._start(request, m.WITHDRAWAL)

    @refusals
    async def SendCarrier(
        self, request: pb.TubeAction, context: grpc.aio.ServicerContext
    ) -> pb.TubeView:
        return await self._action(request, "send")

    @refusals
    async def Decide(
        self, request: pb.DecideRequest, context: grpc.aio.ServicerContext
    ) -> pb.TubeView:
        bounded(session_id=request.session_id, txn_id=request.txn_id)
        return await self._view(
            customer.decide(self._engine, request.session_id, request.txn_id, request.decision),
        )

    @refusals
    async def ConfirmReceipt(
        self, request: pb.TubeAction, context: grpc.aio.ServicerContext
    ) -> pb.TubeView:
        return await self._action(request, "confirm_receipt")

    @refusals
    async def Cancel(
        self, request: pb.TubeAction, context: grpc.aio.ServicerContext
    ) -> pb.TubeView:
        return await self._action(request, "cancel")

    async def _lookup(self, txn_id: str) -> Live:
        if not txn_id:
            raise TubeRefused(
                "invalid", "invalid_argument", "txn_id: must not be empty", field="txn_id"
            )
        bounded(txn_id=txn_id)
        return self._engine.get(txn_id)

    @refusals
    async def GetTransaction(
        self, request: pb.TubeAction, context: grpc.aio.ServicerContext
    ) -> pb.TubeView:
        return await self._view(self._lookup(request.txn_id))

    @refusals
    async def Watch(
        self, request: pb.TubeAction, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.TubeView]:
        entry = await self._live(self._lookup(request.txn_id))
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
