"""Whether the terminal serves customers: in service, out of service, maintenance.

Maintenance is entered by request and acknowledged: while a transaction runs the state is
``maintenance_pending`` (no new transaction may start, the terminal reports itself out of
service) and becomes ``maintenance`` when the last transaction ends.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from enum import StrEnum

from branchline.drivers.base import DeviceStatus


class ServiceState(StrEnum):
    IN_SERVICE = "in_service"
    OUT_OF_SERVICE = "out_of_service"
    MAINTENANCE_PENDING = "maintenance_pending"
    MAINTENANCE = "maintenance"
    SHUTTING_DOWN = "shutting_down"


class NotInService(Exception):
    pass


class ServiceStateMachine:
    def __init__(self, required_devices: tuple[str, ...], on_change: Callable[[], None]) -> None:
        self._required = required_devices
        self._on_change = on_change
        self._device_status: dict[str, DeviceStatus] = {}
        self._maintenance_requested = False
        self._shutting_down = False
        self._active_transactions = 0
        self._last: tuple[ServiceState, str] = self.evaluate()

    def evaluate(self) -> tuple[ServiceState, str]:
        if self._shutting_down:
            return ServiceState.SHUTTING_DOWN, "agent is stopping"
        if self._maintenance_requested:
            if self._active_transactions:
                return ServiceState.MAINTENANCE_PENDING, (
                    f"maintenance requested; waiting for {self._active_transactions} transaction(s)"
                )
            return ServiceState.MAINTENANCE, "maintenance mode"
        down = [
            name
            for name in self._required
            if self._device_status.get(name) not in (DeviceStatus.ONLINE, DeviceStatus.BUSY)
        ]
        if down:
            return ServiceState.OUT_OF_SERVICE, "required device not online: " + ", ".join(down)
        return ServiceState.IN_SERVICE, ""

    @property
    def state(self) -> ServiceState:
        return self._last[0]

    @property
    def detail(self) -> str:
        return self._last[1]

    def _changed(self) -> None:
        now = self.evaluate()
        if now != self._last:
            self._last = now
            self._on_change()

    def device_changed(self, name: str, status: DeviceStatus) -> None:
        self._device_status[name] = status
        self._changed()

    def set_maintenance(self, on: bool) -> None:
        self._maintenance_requested = on
        self._changed()

    def shutting_down(self) -> None:
        self._shutting_down = True
        self._changed()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """Held for the life of a customer transaction; refused unless in service."""
        if self.state is not ServiceState.IN_SERVICE:
            raise NotInService(f"terminal is {self.state.value}: {self.detail}")
        self._active_transactions += 1
        try:
            yield
        finally:
            self._active_transactions -= 1
            self._changed()
