"""Operations' fleet board: every terminal and device, live, filtered by branch and status,
out-of-service and faulted terminals first; one terminal's detail with its devices' status
history as the server keeps it (``Fleet.DeviceHistory``, newest first).

``Fleet.WatchTerminals`` sends the current state of every terminal, then each change; a
reconnect starts with a fresh snapshot, so the board is never older than the stream. The
selected terminal's history is read when it is selected and again after each change of it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import grpc

from branchline.common.errors import InvalidArgument, check_text
from branchline.server.console.client import StaffClient
from branchline.server.console.i18n import format_time
from branchline.server.console.labels import device_name, device_status_name, service_name
from branchline.server.console.watch import follow
from branchline.v1 import common_pb2 as cpb
from branchline.v1 import fleet_pb2 as pb

ACTIONS = ("filter", "select", "close")
HISTORY_LIMIT = 50
STATUS_FILTERS = ("", "attention", "offline", "in_service")


def _name(enum: Any, value: int, prefix: str) -> str:
    return str(enum.Name(value)).removeprefix(prefix).lower()


def faulted(terminal: pb.Terminal) -> bool:
    return any(d.status != cpb.DEVICE_STATUS_ONLINE for d in terminal.devices)


def attention(terminal: pb.Terminal) -> bool:
    """Out of service, offline or with a device not online: shown first."""
    return (
        not terminal.online
        or terminal.service_state != cpb.SERVICE_STATE_IN_SERVICE
        or faulted(terminal)
    )


def device_view(lang: str, device: cpb.Device) -> dict[str, str]:
    """A device by name and status in words; ``name``/``status`` keep the ids."""
    status = _name(cpb.DeviceStatus, device.status, "DEVICE_STATUS_")
    return {
        "name": device.name,
        "label": device_name(lang, device.name),
        "status": status,
        "status_name": device_status_name(lang, status),
        "detail": device.detail,
    }


def terminal_view(lang: str, terminal: pb.Terminal) -> dict[str, Any]:
    service = _name(cpb.ServiceState, terminal.service_state, "SERVICE_STATE_")
    return {
        "terminal_id": terminal.terminal_id,
        "branch": terminal.branch,
        "kind": _name(cpb.TerminalKind, terminal.kind, "TERMINAL_KIND_"),
        "online": terminal.online,
        "service_state": service,
        "service_name": service_name(lang, service),
        "attention": attention(terminal),
        "last_seen_at": format_time(terminal.last_seen_at.ToDatetime())
        if terminal.HasField("last_seen_at")
        else "",
        "devices": [device_view(lang, d) for d in terminal.devices],
    }


def change_view(lang: str, change: pb.DeviceStatusChange) -> dict[str, str]:
    status = _name(cpb.DeviceStatus, change.status, "DEVICE_STATUS_")
    return {
        "device": change.device,
        "device_name": device_name(lang, change.device),
        "status": status,
        "status_name": device_status_name(lang, status),
        "detail": change.detail,
        "at": format_time(change.at.ToDatetime()) if change.HasField("at") else "",
    }


class FleetBoard:
    def __init__(self, client: StaffClient, changed: Callable[[], None]) -> None:
        self._client = client
        self._changed = changed
        self.terminals: dict[str, pb.Terminal] = {}
        # The selected terminal's device status changes, newest first (named per render).
        self.history: list[pb.DeviceStatusChange] = []
        self._reading: asyncio.Task[None] | None = None
        self.branch = ""
        self.status = ""
        self.selected = ""

    async def run(self, on_down: Callable[[], None]) -> None:
        await follow(
            lambda: self._client.stream(
                self._client.fleet.WatchTerminals, pb.WatchTerminalsRequest()
            ),
            self._on_event,
            lambda: None,
            on_down,
        )

    def _on_event(self, event: pb.FleetEvent) -> None:
        self._client.online = True
        if event.HasField("terminal") and event.terminal.terminal_id:
            terminal = event.terminal
            self.terminals[terminal.terminal_id] = terminal
            if event.kind != "snapshot" and terminal.terminal_id == self.selected:
                self._read_history_soon()
        self._changed()

    def visible(self) -> list[pb.Terminal]:
        shown = [
            t
            for t in self.terminals.values()
            if (not self.branch or t.branch == self.branch)
            and (
                not self.status
                or (self.status == "attention" and attention(t))
                or (self.status == "offline" and not t.online)
                or (self.status == "in_service" and not attention(t))
            )
        ]
        return sorted(shown, key=lambda t: (not attention(t), t.branch, t.terminal_id))

    def snapshot(self, lang: str) -> dict[str, Any]:
        selected = self.terminals.get(self.selected)
        return {
            "filter": {"branch": self.branch, "status": self.status},
            "branches": sorted({t.branch for t in self.terminals.values()}),
            "statuses": list(STATUS_FILTERS),
            "terminals": [terminal_view(lang, t) for t in self.visible()],
            "detail": None
            if selected is None
            else {
                **terminal_view(lang, selected),
                "history": [change_view(lang, c) for c in self.history],
            },
        }

    async def handle(self, action: str, data: dict[str, Any]) -> None:
        if action == "filter":
            branch = check_text("branch", str(data.get("branch", "")), required=False)
            status = str(data.get("status", ""))
            if status not in STATUS_FILTERS:
                raise InvalidArgument("status", f"one of {', '.join(STATUS_FILTERS[1:])} or empty")
            self.branch, self.status = branch, status
        elif action == "select":
            terminal_id = check_text("terminal_id", str(data.get("terminal_id", "")), max_len=128)
            if terminal_id not in self.terminals:
                raise InvalidArgument("terminal_id", f"no terminal {terminal_id!r} on the board")
            self.selected = terminal_id
            await self.read_history()
        elif action == "close":
            self.selected, self.history = "", []
        self._changed()

    async def read_history(self) -> None:
        """The selected terminal's device status changes from the server, newest first."""
        terminal_id = self.selected
        request = pb.DeviceHistoryRequest(terminal_id=terminal_id, limit=HISTORY_LIMIT)
        reply = await self._client.call(self._client.fleet.DeviceHistory, request)
        if terminal_id == self.selected:  # still the one shown
            self.history = list(reply.changes)

    def _read_history_soon(self) -> None:
        if self._reading is not None and not self._reading.done():
            return  # one read at a time; it sees this change too unless it already ran
        self._reading = asyncio.ensure_future(self._reread())

    async def _reread(self) -> None:
        with contextlib.suppress(grpc.aio.AioRpcError):  # the stream's reconnect reports it
            await self.read_history()
            self._changed()
