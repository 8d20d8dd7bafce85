"""CustomerInfo: the local API the kiosk page uses for rates and statements (same socket).

Refusals end the call in the one error model (``agent/refusal.py``): the status names the
kind, the details carry the field and the stable code; ids are bounded here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import grpc

from branchline.agent.customer.statement import StatementError, fetch_statement, statement_job
from branchline.agent.receipts import print_job, record
from branchline.common.errors import MAX_ID, check_text
from branchline.common.grpc_errors import refusals
from branchline.drivers.base import DeviceError
from branchline.v1 import customer_info_pb2 as pb
from branchline.v1 import customer_info_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from branchline.agent.daemon import Agent

# How often WatchRates re-checks freshness (the link can drop without a new table).
WATCH_RECHECK_SECONDS = 1.0


class CustomerInfoServicer(pb_grpc.CustomerInfoServicer):
    def __init__(self, agent: Agent) -> None:
        self._agent = agent

    async def GetRates(
        self, request: pb.GetRatesRequest, context: grpc.aio.ServicerContext
    ) -> pb.RatesView:
        return self._agent.rates.view()

    async def WatchRates(
        self, request: pb.GetRatesRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.RatesView]:
        book = self._agent.rates
        last: pb.RatesView | None = None
        while True:
            view = book.view()
            if view != last:
                yield view
                last = view
            await book.wait_change(WATCH_RECHECK_SECONDS)

    async def _statement(self, request: pb.StatementQuery) -> tuple[pb.Statement, str]:
        check_text("session_id", request.session_id, max_len=MAX_ID, required=False)
        check_text("account_id", request.account_id, max_len=MAX_ID, required=False)
        try:
            return await fetch_statement(
                self._agent, request.session_id, request.account_id, request.limit
            )
        except StatementError as exc:
            raise exc.as_domain() from None

    @refusals
    async def GetStatement(
        self, request: pb.StatementQuery, context: grpc.aio.ServicerContext
    ) -> pb.Statement:
        statement, _ = await self._statement(request)
        return statement

    @refusals
    async def PrintStatement(
        self, request: pb.StatementQuery, context: grpc.aio.ServicerContext
    ) -> pb.PrintResult:
        statement, pan_masked = await self._statement(request)
        terminal = self._agent.config.terminal
        job, reference = statement_job(statement, terminal.terminal_id, terminal.branch, pan_masked)
        fields = {
            "reference": reference,
            "customer_id": statement.customer_id,
            "account_id": statement.account.account_id,
        }
        try:
            sent = await print_job(self._agent, job)
        except DeviceError as exc:
            await record(self._agent, "statement_not_printed", {**fields, "code": exc.code})
            return pb.PrintResult(
                completion=exc.completion.value,
                code=exc.code,
                detail=exc.message,
                reference=reference,
            )
        await record(self._agent, "statement_printed", fields)
        return pb.PrintResult(completion="success", reference=reference, bytes=sent)
