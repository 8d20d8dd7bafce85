"""``TubeDesk``: the back office's gRPC service, thin over ``TubeService``.

The rules (back_office skill, own branch only, states) are the service's; its refusals are
``branchline.common.errors`` errors, turned once into the call's status by ``@refusals``:
PERMISSION_DENIED (ErrorInfo naming the rule), INVALID_ARGUMENT (a BadRequest field
violation naming the field), NOT_FOUND and FAILED_PRECONDITION (the reason, e.g.
wrong_state), with the service's message. Every id and free-text field of a request is
bounded here (``check_text``), so no over-long value reaches the service or is echoed back
whole. ``Watch`` tails ``tube_events`` for the caller's branch, so it sees changes made on
any replica.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import grpc

from branchline.common.errors import MAX_ID, InvalidArgument, check_text
from branchline.common.grpc_errors import refusals
from branchline.common.logs import log_event
from branchline.server.applier import Applier
from branchline.server.auth import LOBBY, OPERATOR, TELLER, TERMINAL, Authorizer, Principal
from branchline.server.delivery.bus import TOPIC_TUBE, LocalBus, wait_or_sleep
from branchline.server.ledger.money import MAX_AMOUNT_TEXT
from branchline.server.tube import history
from branchline.server.tube import validate as v
from branchline.server.tube.convert import STATE_FROM_PB
from branchline.server.tube.service import TubeService
from branchline.server.writes import apply_write
from branchline.v1 import tube_pb2 as pb
from branchline.v1 import tube_pb2_grpc as pb_grpc

log = logging.getLogger("branchline.server.tube")

SERVICE_NAMES = (pb.DESCRIPTOR.services_by_name["TubeDesk"].full_name,)
WATCH_POLL_SECONDS = 0.25
# Every role gets past the door, so that the service's refusal names the actual rule.
ANY_ROLE = (TELLER, LOBBY, OPERATOR, TERMINAL)
MAX_MATURITY = len("YYYY-MM-DD")

T = TypeVar("T")


async def _run(fn: Callable[..., T], *args: Any) -> T:
    """Run a (blocking) service call off the event loop; a refusal it raises reaches
    ``@refusals``."""
    return await asyncio.to_thread(fn, *args)


def _bounded_txn_id(txn_id: str) -> str:
    return check_text("txn_id", txn_id, max_len=v.MAX_TXN_ID, required=False)


def _bounded_asset(counted: pb.TubeAsset) -> None:
    check_text("counted.currency", counted.currency, max_len=MAX_ID, required=False)
    check_text("counted.amount", counted.amount, max_len=MAX_AMOUNT_TEXT, required=False)
    bill = counted.bill
    check_text("counted.bill.bill_id", bill.bill_id, max_len=v.MAX_BILL_ID, required=False)
    check_text("counted.bill.instrument", bill.instrument, max_len=v.MAX_INSTRUMENT, required=False)
    check_text("counted.bill.maturity", bill.maturity, max_len=MAX_MATURITY, required=False)


class TubeDeskServicer(pb_grpc.TubeDeskServicer):
    def __init__(
        self,
        service: TubeService,
        auth: Authorizer,
        applier: Applier | None = None,
        bus: LocalBus | None = None,
    ) -> None:
        self._service = service
        self._auth = auth
        # The TerminalLink's applier: the back office's changes join its batches (one
        # writer, no waiting on the database's write lock beside it). None: a thread each.
        self._applier = applier
        # Wakes Watch at once when any replica changed a transaction (the poll is the backstop).
        self._bus = bus

    async def _write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a service call that writes; a refusal it raises reaches ``@refusals``."""
        return await apply_write(self._applier, fn, *args)

    async def _caller(self, context: grpc.aio.ServicerContext, rpc: str) -> Principal:
        return await self._auth.identify(context, ANY_ROLE, f"TubeDesk.{rpc}")

    @refusals
    async def ListTransactions(
        self, request: pb.ListTubeRequest, context: grpc.aio.ServicerContext
    ) -> pb.TubeList:
        who = await self._caller(context, "ListTransactions")
        states = []
        for i, value in enumerate(request.states):
            state = STATE_FROM_PB.get(value)
            if state is None:
                raise InvalidArgument(f"states[{i}]", f"unknown state {value}")
            states.append(str(state))
        txns = await _run(self._service.list_transactions, who, states, int(request.limit))
        return pb.TubeList(txns=txns)

    @refusals
    async def GetTransaction(
        self, request: pb.TubeRef, context: grpc.aio.ServicerContext
    ) -> pb.TubeTransaction:
        who = await self._caller(context, "GetTransaction")
        txn_id = _bounded_txn_id(request.txn_id)
        return await _run(self._service.get_transaction, who, txn_id)

    @refusals
    async def ReceiveCarrier(
        self, request: pb.CarrierRequest, context: grpc.aio.ServicerContext
    ) -> pb.TubeTransaction:
        who = await self._caller(context, "ReceiveCarrier")
        txn_id = _bounded_txn_id(request.txn_id)
        return await self._write(self._service.receive_carrier, who, txn_id, request.carrier_id)

    @refusals
    async def EnterCount(
        self, request: pb.CountRequest, context: grpc.aio.ServicerContext
    ) -> pb.TubeTransaction:
        who = await self._caller(context, "EnterCount")
        txn_id = _bounded_txn_id(request.txn_id)
        _bounded_asset(request.counted)
        note = check_text("note", request.note, max_len=v.MAX_NOTE, required=False)
        return await self._write(self._service.enter_count, who, txn_id, request.counted, note)

    @refusals
    async def SendCarrier(
        self, request: pb.CarrierRequest, context: grpc.aio.ServicerContext
    ) -> pb.TubeTransaction:
        who = await self._caller(context, "SendCarrier")
        txn_id = _bounded_txn_id(request.txn_id)
        return await self._write(self._service.send_carrier, who, txn_id, request.carrier_id)

    @refusals
    async def ListIncidents(
        self, request: pb.ListIncidentsRequest, context: grpc.aio.ServicerContext
    ) -> pb.IncidentList:
        who = await self._caller(context, "ListIncidents")
        found = await _run(self._service.list_incidents, who, request.include_resolved)
        return pb.IncidentList(incidents=found)

    @refusals
    async def ResolveIncident(
        self, request: pb.ResolveIncidentRequest, context: grpc.aio.ServicerContext
    ) -> pb.Incident:
        who = await self._caller(context, "ResolveIncident")
        resolution = check_text(
            "resolution", request.resolution, max_len=v.MAX_RESOLUTION, required=False
        )
        return await self._write(
            self._service.resolve_incident, who, int(request.incident_id), resolution
        )

    @refusals
    async def SearchHistory(
        self, request: pb.HistoryRequest, context: grpc.aio.ServicerContext
    ) -> pb.TubeList:
        who = await self._caller(context, "SearchHistory")
        branch = await _run(self._service.desk_branch, who)
        query = history.parse_query(request)
        found = await asyncio.to_thread(history.search, self._service.engine, branch, query)
        return pb.TubeList(txns=found)

    @refusals
    async def Watch(
        self, request: pb.WatchTubeRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.TubeEventRecord]:
        who = await self._caller(context, "Watch")
        if request.after_id < 0:
            raise InvalidArgument("after_id", "must not be negative")
        branch = await _run(self._service.desk_branch, who)
        log_event(log, "tube_watch", teller=who.name, branch=branch, after_id=request.after_id)
        last = request.after_id
        while True:
            events = await asyncio.to_thread(self._service.events_after, branch, last)
            for event in events:
                last = event.event_id
                yield event
            if not events:
                await wait_or_sleep(self._bus, TOPIC_TUBE, WATCH_POLL_SECONDS)


async def sweep(service: TubeService, interval: float, applier: Applier | None = None) -> None:
    """Open an incident for each transaction left unfinished too long, forever."""
    while True:
        await asyncio.sleep(interval)
        try:
            if applier is None:
                await asyncio.to_thread(service.sweep_stale)
            else:
                await applier.apply(service.sweep_stale, priority=True)
        except Exception:  # the database may be briefly unreachable; keep sweeping
            log.exception("tube stale sweep failed")
