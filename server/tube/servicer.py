"""``TubeDesk``: the back office's gRPC service, thin over ``TubeService``.

The rules (back_office skill, own branch only, states) are the service's; its refusals
become PERMISSION_DENIED (naming the rule), INVALID_ARGUMENT (naming the field),
NOT_FOUND and FAILED_PRECONDITION (a wrong state), with the service's message. ``Watch``
tails ``tube_events`` for the caller's branch, so it sees changes made on any replica.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, NoReturn, TypeVar

import grpc

from branchline.common.grpc_errors import refusals
from branchline.common.logs import log_event
from branchline.server.auth import LOBBY, OPERATOR, TELLER, TERMINAL, Authorizer, Principal
from branchline.server.tube import history
from branchline.server.tube.convert import STATE_FROM_PB
from branchline.server.tube.model import TubeError
from branchline.server.tube.service import TubeService
from branchline.v1 import tube_pb2 as pb
from branchline.v1 import tube_pb2_grpc as pb_grpc

log = logging.getLogger("branchline.server.tube")

SERVICE_NAMES = (pb.DESCRIPTOR.services_by_name["TubeDesk"].full_name,)
WATCH_POLL_SECONDS = 0.25
# Every role gets past the door, so that the service's refusal names the actual rule.
ANY_ROLE = (TELLER, LOBBY, OPERATOR, TERMINAL)

T = TypeVar("T")


async def _abort(context: grpc.aio.ServicerContext, exc: TubeError) -> NoReturn:
    await context.abort(getattr(grpc.StatusCode, exc.status), exc.message)
    raise AssertionError("abort returned")


async def _run(context: grpc.aio.ServicerContext, fn: Callable[..., T], *args: Any) -> T:
    """Run a (blocking) service call off the event loop; its refusal becomes the status."""
    try:
        return await asyncio.to_thread(fn, *args)
    except TubeError as exc:
        await _abort(context, exc)


class TubeDeskServicer(pb_grpc.TubeDeskServicer):
    def __init__(self, service: TubeService, auth: Authorizer) -> None:
        self._service = service
        self._auth = auth

    async def _caller(self, context: grpc.aio.ServicerContext, rpc: str) -> Principal:
        return await self._auth.identify(context, ANY_ROLE, f"TubeDesk.{rpc}")

    async def ListTransactions(
        self, request: pb.ListTubeRequest, context: grpc.aio.ServicerContext
    ) -> pb.TubeList:
        who = await self._caller(context, "ListTransactions")
        states = []
        for i, value in enumerate(request.states):
            state = STATE_FROM_PB.get(value)
            if state is None:
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT, f"states[{i}]: unknown state {value}"
                )
            states.append(str(state))
        txns = await _run(context, self._service.list_transactions, who, states, int(request.limit))
        return pb.TubeList(txns=txns)

    async def GetTransaction(
        self, request: pb.TubeRef, context: grpc.aio.ServicerContext
    ) -> pb.TubeTransaction:
        who = await self._caller(context, "GetTransaction")
        return await _run(context, self._service.get_transaction, who, request.txn_id)

    async def ReceiveCarrier(
        self, request: pb.CarrierRequest, context: grpc.aio.ServicerContext
    ) -> pb.TubeTransaction:
        who = await self._caller(context, "ReceiveCarrier")
        return await _run(
            context, self._service.receive_carrier, who, request.txn_id, request.carrier_id
        )

    async def EnterCount(
        self, request: pb.CountRequest, context: grpc.aio.ServicerContext
    ) -> pb.TubeTransaction:
        who = await self._caller(context, "EnterCount")
        return await _run(
            context, self._service.enter_count, who, request.txn_id, request.counted, request.note
        )

    async def SendCarrier(
        self, request: pb.CarrierRequest, context: grpc.aio.ServicerContext
    ) -> pb.TubeTransaction:
        who = await self._caller(context, "SendCarrier")
        return await _run(
            context, self._service.send_carrier, who, request.txn_id, request.carrier_id
        )

    async def ListIncidents(
        self, request: pb.ListIncidentsRequest, context: grpc.aio.ServicerContext
    ) -> pb.IncidentList:
        who = await self._caller(context, "ListIncidents")
        found = await _run(context, self._service.list_incidents, who, request.include_resolved)
        return pb.IncidentList(incidents=found)

    async def ResolveIncident(
        self, request: pb.ResolveIncidentRequest, context: grpc.aio.ServicerContext
    ) -> pb.Incident:
        who = await self._caller(context, "ResolveIncident")
        return await _run(
            context,
            self._service.resolve_incident,
            who,
            int(request.incident_id),
            request.resolution,
        )

    @refusals
    async def SearchHistory(
        self, request: pb.HistoryRequest, context: grpc.aio.ServicerContext
    ) -> pb.TubeList:
        who = await self._caller(context, "SearchHistory")
        branch = await _run(context, self._service.desk_branch, who)
        query = history.parse_query(request)
        found = await asyncio.to_thread(history.search, self._service.engine, branch, query)
        return pb.TubeList(txns=found)

    async def Watch(
        self, request: pb.WatchTubeRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.TubeEventRecord]:
        who = await self._caller(context, "Watch")
        if request.after_id < 0:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "after_id: must not be negative")
        branch = await _run(context, self._service.desk_branch, who)
        log_event(log, "tube_watch", teller=who.name, branch=branch, after_id=request.after_id)
        last = request.after_id
        while True:
            events = await asyncio.to_thread(self._service.events_after, branch, last)
            for event in events:
                last = event.event_id
                yield event
            if not events:
                await asyncio.sleep(WATCH_POLL_SECONDS)


async def sweep(service: TubeService, interval: float) -> None:
    """Open an incident for each transaction left unfinished too long, forever."""
    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.to_thread(service.sweep_stale)
        except Exception:  # the database may be briefly unreachable; keep sweeping
            log.exception("tube stale sweep failed")
