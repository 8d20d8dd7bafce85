"""The simulated pneumatic tube station: the terminal's station controller speaking Modbus RTU
on its pty, the tube line to the back office, and the station's GPIO sensors as a state file.

The agent drives the terminal station over Modbus; SimControl.Act plays the customer at the
terminal (``load``, ``remove``) and the back-office staff (``backoffice_send``,
``backoffice_return``, ``backoffice_remove``). Everything timed runs on the loop's
``call_later``; nothing here blocks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path

from branchline.common.logs import log_event
from branchline.drivers.tube_station.gpio import GpioReading, write_sim_state
from branchline.drivers.tube_station.registers import MAX_U32
from branchline.sim.devices.base import SimError, SimulatedDevice
from branchline.sim.tube.controller import StationController
from branchline.sim.tube.line import LineError, Timer, TubeLine
from branchline.sim.tube.rtu import Request, RtuSlaveFramer, answer

log = logging.getLogger("branchline.sim.tube_station")

UNIT_ID = 1
# RTU frames end with 3.5 characters of silence; on a pty a whole frame arrives in one read,
# so a short gap is plenty and keeps garbage from waiting long for its verdict.
SILENCE = 0.01
FAULTS = ("jam", "carrier_lost", "door_open", "sensor_mismatch", "controller_silent")
ACTIONS = (
    "load",
    "remove",
    "backoffice_send",
    "backoffice_return",
    "backoffice_remove",
    "set_travel_time",
    "status",
)


def _call_later(delay: float, fn: Callable[[], None]) -> Timer:
    return asyncio.get_running_loop().call_later(delay, fn)


def _carrier_id(params: dict[str, str]) -> int:
    raw = params.get("carrier_id", "")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_U32:
        raise SimError(f"carrier_id: expected a whole number 1…{MAX_U32}, got {raw!r}")
    return int(raw)


class SimulatedTubeStation(SimulatedDevice):
    name = "tube_station"
    faults_available = FAULTS

    def __init__(self, run_dir: Path) -> None:
        super().__init__(run_dir)
        self.gpio_path = run_dir / "gpio" / self.name
        self.line = TubeLine(_call_later, time.monotonic, on_change=self._sensors_changed)
        self.controller = StationController(self.line)
        self.framer = RtuSlaveFramer()
        self._silence: asyncio.TimerHandle | None = None
        self._gpio_written: GpioReading | None = None
        self.requests = 0
        self._sensors_changed()

    # -- the wire --------------------------------------------------------------------------

    def on_bytes(self, data: bytes) -> None:
        if "controller_silent" in self.faults_active:
            return  # powered off or its RS-485 transceiver died: nothing answers
        for request in self.framer.feed(data):
            self._answer(request)
        if self._silence is not None:
            self._silence.cancel()
            self._silence = None
        if self.framer.pending:
            self._silence = asyncio.get_running_loop().call_later(SILENCE, self._line_quiet)

    def _line_quiet(self) -> None:
        self._silence = None
        for request in self.framer.silence():
            self._answer(request)

    def _answer(self, request: Request) -> None:
        self.requests += 1
        reply = answer(request, self.controller, UNIT_ID)
        self._sensors_changed()  # a command may have moved the door or the carrier
        if reply is not None:
            self.send(reply)

    def reset_line(self) -> None:
        self.framer.reset()
        if self._silence is not None:
            self._silence.cancel()
            self._silence = None

    # -- GPIO ------------------------------------------------------------------------------

    def _sensors_changed(self) -> None:
        station = self.line.terminal
        reading = GpioReading(
            door_closed=station.door_sensor_closed,
            # sensor_mismatch: the GPIO carrier sensor reads the opposite of the controller's.
            carrier_present=station.present != ("sensor_mismatch" in self.faults_active),
        )
        if reading != self._gpio_written:
            write_sim_state(self.gpio_path, reading)
            self._gpio_written = reading

    # -- control ---------------------------------------------------------------------------

    def set_fault(self, fault: str, active: bool) -> None:
        super().set_fault(fault, active)
        if fault == "jam":
            self.line.set_jam(active)
        elif fault == "carrier_lost":
            self.line.set_lost(active)
        elif fault == "door_open":
            self.line.set_door_forced(active)
        self._sensors_changed()
        log_event(log, "sim_tube_fault", fault=fault, active=active)

    def act(self, action: str, params: dict[str, str]) -> dict[str, str]:
        line = self.line
        try:
            if action == "load":
                line.load(_carrier_id(params))
            elif action == "remove":
                line.remove()
            elif action == "backoffice_send":
                line.backoffice_send(_carrier_id(params))
            elif action == "backoffice_return":
                line.backoffice_return()
            elif action == "backoffice_remove":
                line.backoffice_remove()
            elif action == "set_travel_time":
                line.travel_time = self._seconds(params)
            elif action != "status":
                raise SimError(
                    f"action: {self.name} has no action {action!r}; available: {', '.join(ACTIONS)}"
                )
        except LineError as exc:
            raise SimError(f"{action}: {exc}") from None
        self._sensors_changed()
        return line.describe()

    @staticmethod
    def _seconds(params: dict[str, str]) -> float:
        raw = params.get("seconds", "")
        try:
            value = float(raw)
        except ValueError:
            raise SimError(f"seconds: expected a number, got {raw!r}") from None
        if not 0.05 <= value <= 600:
            raise SimError(f"seconds: must be between 0.05 and 600, got {value:g}")
        return value

    def facts(self) -> dict[str, str]:
        return {
            **self.line.describe(),
            "requests": str(self.requests),
            "frames": str(self.framer.frames),
            "garbage_bytes": str(self.framer.garbage_bytes),
            "commands_taken": str(self.controller.commands_taken),
            "gpio_file": str(self.gpio_path),
        }
