"""The terminal station's controller as a Modbus register bank over the tube line model.

Addresses and meanings are those of ``branchline.drivers.tube_station.registers``; reads
that run into a reserved or missing address, and writes of an unknown command, are Modbus
exceptions, as a real controller answers them.
"""

from __future__ import annotations

from collections.abc import Sequence

from branchline.drivers.tube_station import registers as reg
from branchline.drivers.tube_station.registers import (
    Command,
    CommandResult,
    LineStatus,
    StationSnapshot,
)
from branchline.sim.tube.line import TubeLine
from branchline.sim.tube.rtu import (
    ILLEGAL_DATA_ADDRESS,
    ILLEGAL_DATA_VALUE,
    ModbusRefusal,
    RegisterBank,
)


def _window(address: int, count: int, start: int, size: int) -> slice:
    """The slice of a block ``[start, start+size)`` that the request covers entirely."""
    if address < start or address + count > start + size:
        raise ModbusRefusal(ILLEGAL_DATA_ADDRESS)
    return slice(address - start, address - start + count)


class StationController(RegisterBank):
    def __init__(self, line: TubeLine) -> None:
        self.line = line
        self.holding = [0] * reg.HOLDING_COUNT
        self.command_result = CommandResult.NONE
        self.command_seq = 0
        self.commands_taken = 0

    def snapshot(self) -> StationSnapshot:
        station = self.line.terminal
        return StationSnapshot(
            state=station.reported_state,
            fault=station.fault,
            present_carrier_id=station.carrier_id,
            in_flight_seconds=self.line.in_flight_seconds(station),
            sent_count=station.sent,
            received_count=station.received,
            door_closed=station.door_sensor_closed,
            carrier_present=station.present,
            blower_running=self.line.blower_running(station),
        )

    def line_status(self) -> LineStatus:
        far = self.line.backoffice
        return LineStatus(
            remote_state=far.reported_state,
            remote_carrier_id=far.carrier_id,
            command_result=self.command_result,
            command_seq=self.command_seq,
        )

    # -- RegisterBank ------------------------------------------------------------------------

    def read_discrete_inputs(self, address: int, count: int) -> list[bool]:
        _, inputs = reg.encode_snapshot(self.snapshot())
        return inputs[_window(address, count, 0, reg.DISCRETE_COUNT)]

    def read_holding_registers(self, address: int, count: int) -> list[int]:
        return self.holding[_window(address, count, 0, reg.HOLDING_COUNT)]

    def read_input_registers(self, address: int, count: int) -> list[int]:
        if address < reg.IR_LINE_BLOCK:
            registers, _ = reg.encode_snapshot(self.snapshot())
            return registers[_window(address, count, 0, reg.INPUT_COUNT)]
        block = reg.encode_line(self.line_status())
        return block[_window(address, count, reg.IR_LINE_BLOCK, reg.LINE_COUNT)]

    def write_registers(self, address: int, values: Sequence[int]) -> None:
        where = _window(address, len(values), 0, reg.HOLDING_COUNT)
        proposed = list(self.holding)
        proposed[where] = list(values)
        request = reg.decode_command(proposed)
        if isinstance(request, reg.Malformed):
            raise ModbusRefusal(ILLEGAL_DATA_VALUE)
        self.holding = proposed
        if request.command is not Command.NONE:
            self.command_result = self._carry_out(request.command, request.carrier_id)
            self.command_seq = (self.command_seq + 1) & 0xFFFF
            self.commands_taken += 1
            self.holding[reg.HR_COMMAND] = Command.NONE  # taken

    def _carry_out(self, command: Command, carrier_id: int) -> CommandResult:
        line, station = self.line, self.line.terminal
        if command is Command.SEND:
            return line.send(station, carrier_id)
        if command is Command.SEND_TEST:
            return line.send(station, carrier_id, auto_return=True)
        if command is Command.PREPARE_RECEIVE:
            return line.prepare_receive(station)
        if command is Command.OPEN_DOOR:
            return line.open_door(station)
        if command is Command.CLOSE_DOOR:
            return line.close_door(station)
        if command is Command.BLOWER_ON:
            return line.set_blower(station, True)
        if command is Command.BLOWER_OFF:
            return line.set_blower(station, False)
        if command is Command.RESET_FAULT:
            return line.reset_fault(station)
        raise AssertionError(command)
