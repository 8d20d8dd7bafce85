"""The simulated tube line and station controller, on a fake clock (no loop, no pty)."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from branchline.drivers.tube_station import registers as reg
from branchline.drivers.tube_station.gpio import decode_sim_state
from branchline.drivers.tube_station.registers import (
    Command,
    CommandResult,
    Fault,
    StationState,
)
from branchline.sim.devices.base import SimError
from branchline.sim.tube import rtu
from branchline.sim.tube.controller import StationController
from branchline.sim.tube.line import LineError, TubeLine
from branchline.sim.tube.rtu import ModbusRefusal


@dataclass
class FakeTimer:
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


@dataclass
class FakeClock:
    now: float = 0.0
    _queue: list[tuple[float, int, FakeTimer, Callable[[], None]]] = field(default_factory=list)
    _order: itertools.count[int] = field(default_factory=itertools.count)

    def call_later(self, delay: float, fn: Callable[[], None]) -> FakeTimer:
        timer = FakeTimer()
        heapq.heappush(self._queue, (self.now + delay, next(self._order), timer, fn))
        return timer

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        while self._queue and self._queue[0][0] <= end:
            at, _, timer, fn = heapq.heappop(self._queue)
            self.now = at
            if not timer.cancelled:
                fn()
        self.now = end


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def line(clock: FakeClock) -> TubeLine:
    return TubeLine(clock.call_later, lambda: clock.now, travel_time=1.0)


def states(line: TubeLine) -> tuple[StationState, StationState]:
    return line.terminal.reported_state, line.backoffice.reported_state


def test_round_trip_terminal_to_back_office_and_back(line: TubeLine, clock: FakeClock) -> None:
    line.load(42)
    assert states(line) == (StationState.LOADED, StationState.EMPTY)
    assert line.send(line.terminal, 42) is CommandResult.DONE
    assert states(line) == (StationState.SENDING, StationState.READY_TO_RECEIVE)
    clock.advance(0.3)
    assert states(line) == (StationState.IN_TRANSIT, StationState.READY_TO_RECEIVE)
    assert not line.terminal.present and line.terminal.sent == 1
    clock.advance(0.6)
    assert line.in_flight_seconds(line.terminal) == 0  # 0.65 s: whole seconds only
    clock.advance(0.5)
    assert states(line) == (StationState.EMPTY, StationState.ARRIVED)
    assert line.backoffice.carrier_id == 42 and line.backoffice.received == 1

    line.backoffice_return()
    clock.advance(1.5)
    assert states(line) == (StationState.ARRIVED, StationState.EMPTY)
    with pytest.raises(LineError, match="door is closed"):
        line.remove()
    assert line.open_door(line.terminal) is CommandResult.DONE
    line.remove()
    assert states(line) == (StationState.REMOVED, StationState.EMPTY)
    assert line.close_door(line.terminal) is CommandResult.DONE
    assert states(line) == (StationState.EMPTY, StationState.EMPTY)
    assert (line.terminal.sent, line.terminal.received) == (1, 1)


def test_send_refusals(line: TubeLine) -> None:
    assert line.send(line.terminal, 0) is CommandResult.WRONG_STATE
    line.load(5)
    assert line.send(line.terminal, 6) is CommandResult.WRONG_CARRIER
    line.backoffice.state, line.backoffice.carrier_id = StationState.ARRIVED, 9
    assert line.send(line.terminal, 5) is CommandResult.REMOTE_NOT_READY
    line.backoffice_remove()
    line.set_door_forced(True)
    assert line.send(line.terminal, 5) is CommandResult.FAULT_ACTIVE


def test_jam_stops_the_carrier_and_reset_puts_it_back(line: TubeLine, clock: FakeClock) -> None:
    line.load(7)
    line.set_jam(True)
    line.send(line.terminal, 7)
    clock.advance(5)
    assert states(line) == (StationState.JAMMED, StationState.READY_TO_RECEIVE)
    assert line.terminal.fault is Fault.JAM and line.backoffice.fault is Fault.JAM
    assert line.reset_fault(line.terminal) is CommandResult.FAULT_ACTIVE  # still stuck
    line.set_jam(False)
    assert line.reset_fault(line.terminal) is CommandResult.DONE
    assert states(line) == (StationState.LOADED, StationState.EMPTY)
    assert line.terminal.carrier_id == 7 and line.flight is None
    line.send(line.terminal, 7)
    clock.advance(2)
    assert states(line) == (StationState.EMPTY, StationState.ARRIVED)


def test_lost_carrier_never_arrives_until_written_off(line: TubeLine, clock: FakeClock) -> None:
    line.load(8)
    line.set_lost(True)
    line.send(line.terminal, 8)
    clock.advance(30)
    assert states(line) == (StationState.IN_TRANSIT, StationState.READY_TO_RECEIVE)
    assert line.in_flight_seconds(line.terminal) == 29  # left 0.25 s after the command
    assert line.terminal.fault is Fault.NONE  # nothing on the line notices
    assert line.reset_fault(line.terminal) is CommandResult.DONE
    assert states(line) == (StationState.EMPTY, StationState.EMPTY)


def test_door_forced_open_aborts_a_send_that_has_not_left(line: TubeLine, clock: FakeClock) -> None:
    line.load(9)
    line.send(line.terminal, 9)
    line.set_door_forced(True)
    assert states(line) == (StationState.DOOR_FAULT, StationState.EMPTY)
    clock.advance(3)
    assert line.terminal.state is StationState.LOADED and line.terminal.carrier_id == 9
    assert line.reset_fault(line.terminal) is CommandResult.DOOR_OPEN
    line.set_door_forced(False)
    assert line.terminal.fault is Fault.DOOR_OPENED_IN_USE  # latched until reset
    assert line.reset_fault(line.terminal) is CommandResult.DONE
    assert line.terminal.fault is Fault.NONE


def test_test_carrier_comes_back_by_itself(line: TubeLine, clock: FakeClock) -> None:
    line.load(99)
    line.send(line.terminal, 0, auto_return=True)
    clock.advance(1.3)
    assert states(line) == (StationState.EMPTY, StationState.ARRIVED)
    clock.advance(0.4)
    assert line.backoffice.state in (StationState.SENDING, StationState.IN_TRANSIT)
    clock.advance(2)
    assert states(line) == (StationState.ARRIVED, StationState.EMPTY)
    assert line.terminal.carrier_id == 99


def test_back_office_cannot_send_to_a_busy_terminal(line: TubeLine) -> None:
    line.load(1)
    with pytest.raises(LineError, match="terminal station is loaded"):
        line.backoffice_send(2)
    with pytest.raises(LineError, match="no carrier to return"):
        line.backoffice_return()


# -- the controller's registers ------------------------------------------------------------------


def test_controller_takes_commands_and_counts_them(line: TubeLine) -> None:
    controller = StationController(line)
    line.load(0x0001_86A0)
    snapshot = reg.decode_snapshot(
        controller.read_input_registers(0, reg.INPUT_COUNT),
        controller.read_discrete_inputs(0, reg.DISCRETE_COUNT),
    )
    assert isinstance(snapshot, reg.StationSnapshot)
    assert snapshot.state is StationState.LOADED and snapshot.present_carrier_id == 100_000
    assert snapshot.door_closed and snapshot.carrier_present

    controller.write_registers(0, reg.encode_command(reg.CommandRequest(Command.SEND, 100_001)))
    block = reg.decode_line(controller.read_input_registers(reg.IR_LINE_BLOCK, reg.LINE_COUNT))
    assert isinstance(block, reg.LineStatus)
    assert block.command_result is CommandResult.WRONG_CARRIER and block.command_seq == 1
    assert controller.read_holding_registers(0, 1) == [0]  # taken

    controller.write_registers(0, reg.encode_command(reg.CommandRequest(Command.SEND, 100_000)))
    block = reg.decode_line(controller.read_input_registers(reg.IR_LINE_BLOCK, reg.LINE_COUNT))
    assert isinstance(block, reg.LineStatus)
    assert block.command_result is CommandResult.DONE and block.command_seq == 2
    assert block.remote_state is StationState.READY_TO_RECEIVE


def test_controller_refuses_reserved_addresses_and_unknown_commands(line: TubeLine) -> None:
    controller = StationController(line)
    for address, count in ((8, 2), (9, 1), (15, 2), (20, 2), (0, 21)):
        with pytest.raises(ModbusRefusal) as refused:
            controller.read_input_registers(address, count)
        assert refused.value.code == rtu.ILLEGAL_DATA_ADDRESS
    with pytest.raises(ModbusRefusal):
        controller.read_discrete_inputs(2, 2)
    with pytest.raises(ModbusRefusal) as refused:
        controller.write_registers(0, [9, 0, 0])
    assert refused.value.code == rtu.ILLEGAL_DATA_VALUE
    assert controller.holding == [0, 0, 0] and controller.command_seq == 0
    controller.write_registers(1, [0, 5])  # the id alone: stored, nothing taken
    assert controller.holding == [0, 0, 5] and controller.command_seq == 0


# -- the simulated device ------------------------------------------------------------------------


def test_device_writes_gpio_state_and_validates_actions(tmp_path: Path) -> None:
    from branchline.sim.devices.tube_station import SimulatedTubeStation

    device = SimulatedTubeStation(tmp_path)
    gpio = decode_sim_state((tmp_path / "gpio" / "tube_station").read_bytes())
    assert gpio.door_closed and not gpio.carrier_present
    result = device.act("load", {"carrier_id": "12"})
    assert result["terminal_state"] == "loaded" and result["terminal_carrier_id"] == "12"
    assert decode_sim_state((tmp_path / "gpio" / "tube_station").read_bytes()).carrier_present
    with pytest.raises(SimError, match="carrier_id: expected a whole number"):
        device.act("load", {"carrier_id": "twelve"})
    with pytest.raises(SimError, match="seconds: must be between"):
        device.act("set_travel_time", {"seconds": "0"})
    with pytest.raises(SimError, match="has no action 'fly'"):
        device.act("fly", {})
    with pytest.raises(SimError, match="no fault 'fire'"):
        device.set_fault("fire", True)
    device.set_fault("sensor_mismatch", True)
    assert not decode_sim_state((tmp_path / "gpio" / "tube_station").read_bytes()).carrier_present
