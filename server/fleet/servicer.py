"""Fleet: operations' view of terminals and devices (list, get, watch, device history).

Watch tails the ``fleet_events`` table, so a watcher on one replica sees changes made
through any replica sharing the database; every append signals the delivery bus's
``fleet`` topic, which wakes the watch at once (its poll is the backstop).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
from sqlalchemy import Engine

from branchline.common.enum_maps import DEVICE_STATUS_TO_PB
from branchline.common.errors import MAX_ID, InvalidArgument, NotFound, check_text, echo
from branchline.common.grpc_errors import refusals
from branchline.server import fleet_history
from branchline.server import fleet_registry as registry
from branchline.server.auth import OPERATOR, Authorizer
from branchline.server.convert import event_to_pb, terminal_to_pb, timestamp
from branchline.server.delivery.bus import TOPIC_FLEET, LocalBus, wait_for_change
from branchline.v1 import common_pb2
from branchline.v1 import fleet_pb2 as pb
from branchline.v1 import fleet_pb2_grpc as pb_grpc

WATCH_POLL_SECONDS = 0.25
DEFAULT_HISTORY = 50


class FleetServicer(pb_grpc.FleetServicer):
    def __init__(self, engine: Engine, auth: Authorizer, bus: LocalBus | None = None) -> None:
        self._engine = engine
        self._auth = auth
        self._bus = bus

    @refusals
    async def ListTerminals(
        self, request: pb.ListTerminalsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListTerminalsResponse:
        await self._auth.require(context, OPERATOR, "Fleet.ListTerminals")
        check_text("branch", request.branch, max_len=MAX_ID, required=False)
        terminals = await asyncio.to_thread(
            registry.list_terminals, self._engine, request.branch or None
        )
        return pb.ListTerminalsResponse(terminals=[terminal_to_pb(t) for t in terminals])

    @refusals
    async def GetTerminal(
        self, request: pb.GetTerminalRequest, context: grpc.aio.ServicerContext
    ) -> pb.Terminal:
        await self._auth.require(context, OPERATOR, "Fleet.GetTerminal")
        terminal_id = check_text("terminal_id", request.terminal_id, max_len=MAX_ID)
        terminal = await asyncio.to_thread(registry.get_terminal, self._engine, terminal_id)
        if terminal is None:
            raise NotFound(
                f"terminal_id: no terminal {echo(terminal_id)}",
                field="terminal_id",
                reason="unknown_terminal",
            )
        return terminal_to_pb(terminal)

    @refusals
    async def DeviceHistory(
        self, request: pb.DeviceHistoryRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeviceHistoryResponse:
        await self._auth.require(context, OPERATOR, "Fleet.DeviceHistory")
        terminal_id = check_text("terminal_id", request.terminal_id, max_len=MAX_ID)
        limit = request.limit or DEFAULT_HISTORY
        if limit > fleet_history.MAX_LIMIT:
            raise InvalidArgument(
                "limit", f"at most {fleet_history.MAX_LIMIT}", reason="out_of_range"
            )
        if await asyncio.to_thread(registry.get_terminal, self._engine, terminal_id) is None:
            raise NotFound(
                f"terminal_id: no terminal {echo(terminal_id)}",
                field="terminal_id",
                reason="unknown_terminal",
            )
        changes = await asyncio.to_thread(fleet_history.changes, self._engine, terminal_id, limit)
        return pb.DeviceHistoryResponse(changes=[_change_to_pb(c) for c in changes])

    @refusals
    async def WatchTerminals(
        self, request: pb.WatchTerminalsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.FleetEvent]:
        await self._auth.require(context, OPERATOR, "Fleet.WatchTerminals")
        branch = check_text("branch", request.branch, max_len=MAX_ID, required=False) or None
        last = await asyncio.to_thread(registry.latest_event_id, self._engine)
        for terminal in await asyncio.to_thread(registry.list_terminals, self._engine, branch):
            yield pb.FleetEvent(
                event_id=last,
                kind="snapshot",
                terminal=terminal_to_pb(terminal),
                at=timestamp(terminal.last_seen_at),
            )
        while True:
            events = await asyncio.to_thread(registry.events_after, self._engine, last, branch)
            for event in events:
                last = event.event_id
                current = await asyncio.to_thread(_get, self._engine, event.terminal_id)
                yield event_to_pb(event, current)
            if not events:
                # Woken by any replica's (or process's) new fleet_events row.
                await wait_for_change(self._bus, TOPIC_FLEET, WATCH_POLL_SECONDS)


def _get(engine: Engine, terminal_id: str) -> registry.TerminalRecord | None:
    return registry.get_terminal(engine, terminal_id)


def _change_to_pb(change: fleet_history.StatusChange) -> pb.DeviceStatusChange:
    return pb.DeviceStatusChange(
        change_id=change.change_id,
        device=change.device,
        status=DEVICE_STATUS_TO_PB.get(change.status, common_pb2.DEVICE_STATUS_UNSPECIFIED),
        detail=change.detail,
        at=timestamp(change.at),
    )
