"""Modbus register map of Branchline's pneumatic tube station controller (our own design).

All actions go through one command register, so there is a single write path to reason
about; the sensors are read-only discrete inputs. 32-bit values span two registers, high
word first. The controller clears COMMAND back to 0 once it has taken a command, so a
non-zero read-back means "not yet accepted".

Holding registers (read/write, FC 03/06/16)

======  ==================  ============================================================
addr    name                values
======  ==================  ============================================================
0       COMMAND             0 none, 1 send, 2 prepare receive, 3 open door, 4 close door,
                            5 blower on, 6 blower off, 7 reset fault; technician
                            commands from 16: 16 send test (the far station returns
                            the carrier by itself)
1-2     SEND_CARRIER_ID     carrier to send (32-bit, high word first), read with SEND and
                            SEND_TEST; 0 sends whatever carrier is present, any other
                            value must match PRESENT_CARRIER_ID
======  ==================  ============================================================

Input registers (read-only, FC 04)

======  ==================  ============================================================
addr    name                values
======  ==================  ============================================================
0       STATION_STATE       0 empty, 1 loaded, 2 sending, 3 in transit, 4 arrived,
                            5 removed, 6 jammed, 7 door-open fault, 8 ready to receive
1       LAST_FAULT          0 none, 1 jam, 2 door opened in use, 3 blower failure,
                            4 transit timeout, 5 diverter fault, 6 sensor fault,
                            7 power loss
2-3     PRESENT_CARRIER_ID  carrier in the station (32-bit), 0 when none
4       IN_FLIGHT_SECONDS   seconds since the current send left, 0 when none in flight
5-6     SENT_COUNT          carriers sent since commissioning (32-bit, wraps)
7-8     RECEIVED_COUNT      carriers received since commissioning (32-bit, wraps)
9-15    (reserved)          reading them is an illegal-data-address exception
16      REMOTE_STATE        the far station's STATION_STATE (same codes)
17-18   REMOTE_CARRIER_ID   carrier in the far station (32-bit), 0 when none
19      COMMAND_RESULT      how the last command taken ended: 0 none yet, 1 done,
                            2 refused: wrong state, 3 refused: door open, 4 refused:
                            fault active, 5 refused: wrong carrier id, 6 refused: far
                            station not ready
20      COMMAND_SEQ         commands taken since power-up (wraps at 65536): a host that
                            reads it before and after its write knows the result is its own
======  ==================  ============================================================

Registers 0-8 are the station snapshot, 16-20 the line block; each is read in one FC 04.

Discrete inputs (read-only, FC 02)

======  ==================  ============================================================
addr    name                meaning when set
======  ==================  ============================================================
0       DOOR_CLOSED         the station door is closed and latched
1       CARRIER_PRESENT     a carrier sits in the station
2       BLOWER_RUNNING      the blower is running
======  ==================  ============================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

from branchline.drivers.malformed import Malformed

HR_COMMAND = 0
HR_SEND_CARRIER_ID = 1
HOLDING_COUNT = 3

IR_STATION_STATE = 0
IR_LAST_FAULT = 1
IR_PRESENT_CARRIER_ID = 2
IR_IN_FLIGHT_SECONDS = 4
IR_SENT_COUNT = 5
IR_RECEIVED_COUNT = 7
INPUT_COUNT = 9

IR_LINE_BLOCK = 16
IR_REMOTE_STATE = 16
IR_REMOTE_CARRIER_ID = 17
IR_COMMAND_RESULT = 19
IR_COMMAND_SEQ = 20
LINE_COUNT = 5

DI_DOOR_CLOSED = 0
DI_CARRIER_PRESENT = 1
DI_BLOWER_RUNNING = 2
DISCRETE_COUNT = 3

MAX_U32 = 0xFFFF_FFFF


class Command(IntEnum):
    NONE = 0
    SEND = 1
    PREPARE_RECEIVE = 2
    OPEN_DOOR = 3
    CLOSE_DOOR = 4
    BLOWER_ON = 5
    BLOWER_OFF = 6
    RESET_FAULT = 7
    SEND_TEST = 16  # technician commands are numbered from 16


class CommandResult(IntEnum):
    NONE = 0
    DONE = 1
    WRONG_STATE = 2
    DOOR_OPEN = 3
    FAULT_ACTIVE = 4
    WRONG_CARRIER = 5
    REMOTE_NOT_READY = 6


class StationState(IntEnum):
    EMPTY = 0
    LOADED = 1
    SENDING = 2
    IN_TRANSIT = 3
    ARRIVED = 4
    REMOVED = 5
    JAMMED = 6
    DOOR_FAULT = 7
    READY_TO_RECEIVE = 8


class Fault(IntEnum):
    NONE = 0
    JAM = 1
    DOOR_OPENED_IN_USE = 2
    BLOWER_FAILURE = 3
    TRANSIT_TIMEOUT = 4
    DIVERTER_FAULT = 5
    SENSOR_FAULT = 6
    POWER_LOSS = 7


@dataclass(frozen=True)
class CommandRequest:
    command: Command
    carrier_id: int = 0


@dataclass(frozen=True)
class StationSnapshot:
    state: StationState
    fault: Fault
    present_carrier_id: int
    in_flight_seconds: int
    sent_count: int
    received_count: int
    door_closed: bool
    carrier_present: bool
    blower_running: bool


@dataclass(frozen=True)
class LineStatus:
    """Input registers 16-20: the far station and the outcome of the last command."""

    remote_state: StationState
    remote_carrier_id: int
    command_result: CommandResult
    command_seq: int


def _split(value: int) -> list[int]:
    if not 0 <= value <= MAX_U32:
        raise ValueError(f"{value} does not fit 32 bits")
    return [value >> 16, value & 0xFFFF]


def _join(registers: Sequence[int], at: int) -> int:
    return (registers[at] << 16) | registers[at + 1]


def _registers_problem(registers: Sequence[int], count: int, kind: str) -> str | None:
    if len(registers) != count:
        return f"expected {count} {kind} registers, got {len(registers)}"
    for at, value in enumerate(registers):
        if not isinstance(value, int) or not 0 <= value <= 0xFFFF:
            return f"{kind} register {at} holds {value!r}, not a 16-bit value"
    return None


def _raw(values: Sequence[object]) -> tuple[int, ...]:
    return tuple(v if isinstance(v, int) else -1 for v in values)


def encode_command(request: CommandRequest) -> list[int]:
    """Holding registers 0..2 to write in one FC 16 (the id is ignored except for SEND)."""
    return [int(request.command), *_split(request.carrier_id)]


def decode_command(registers: Sequence[int]) -> CommandRequest | Malformed[tuple[int, ...]]:
    """The simulator's side: what the host wrote to holding registers 0..2."""
    problem = _registers_problem(registers, HOLDING_COUNT, "holding")
    if problem:
        return Malformed(problem, _raw(registers))
    try:
        command = Command(registers[HR_COMMAND])
    except ValueError:
        return Malformed(f"unknown command {registers[HR_COMMAND]}", _raw(registers))
    return CommandRequest(command, _join(registers, HR_SEND_CARRIER_ID))


def encode_snapshot(snapshot: StationSnapshot) -> tuple[list[int], list[bool]]:
    """Input registers 0..8 and discrete inputs 0..2 showing ``snapshot`` (the simulator)."""
    if not 0 <= snapshot.in_flight_seconds <= 0xFFFF:
        raise ValueError("in-flight seconds do not fit 16 bits")
    registers = [
        int(snapshot.state),
        int(snapshot.fault),
        *_split(snapshot.present_carrier_id),
        snapshot.in_flight_seconds,
        *_split(snapshot.sent_count),
        *_split(snapshot.received_count),
    ]
    inputs = [snapshot.door_closed, snapshot.carrier_present, snapshot.blower_running]
    return registers, inputs


def decode_snapshot(
    registers: Sequence[int], discrete_inputs: Sequence[bool]
) -> StationSnapshot | Malformed[tuple[int, ...]]:
    """Never raises: a wrong count or an out-of-range value comes back as Malformed."""
    problem = _registers_problem(registers, INPUT_COUNT, "input")
    if problem:
        return Malformed(problem, _raw(registers))
    if len(discrete_inputs) != DISCRETE_COUNT:
        return Malformed(
            f"expected {DISCRETE_COUNT} discrete inputs, got {len(discrete_inputs)}",
            _raw(registers),
        )
    try:
        state = StationState(registers[IR_STATION_STATE])
    except ValueError:
        return Malformed(f"unknown station state {registers[IR_STATION_STATE]}", _raw(registers))
    try:
        fault = Fault(registers[IR_LAST_FAULT])
    except ValueError:
        return Malformed(f"unknown fault code {registers[IR_LAST_FAULT]}", _raw(registers))
    return StationSnapshot(
        state=state,
        fault=fault,
        present_carrier_id=_join(registers, IR_PRESENT_CARRIER_ID),
        in_flight_seconds=registers[IR_IN_FLIGHT_SECONDS],
        sent_count=_join(registers, IR_SENT_COUNT),
        received_count=_join(registers, IR_RECEIVED_COUNT),
        door_closed=bool(discrete_inputs[DI_DOOR_CLOSED]),
        carrier_present=bool(discrete_inputs[DI_CARRIER_PRESENT]),
        blower_running=bool(discrete_inputs[DI_BLOWER_RUNNING]),
    )


def encode_line(line: LineStatus) -> list[int]:
    """Input registers 16..20 showing ``line`` (the simulator)."""
    if not 0 <= line.command_seq <= 0xFFFF:
        raise ValueError("command sequence does not fit 16 bits")
    return [
        int(line.remote_state),
        *_split(line.remote_carrier_id),
        int(line.command_result),
        line.command_seq,
    ]


def decode_line(registers: Sequence[int]) -> LineStatus | Malformed[tuple[int, ...]]:
    """Never raises: a wrong count or an unknown code comes back as Malformed."""
    problem = _registers_problem(registers, LINE_COUNT, "line block")
    if problem:
        return Malformed(problem, _raw(registers))
    at_state = IR_REMOTE_STATE - IR_LINE_BLOCK
    at_result = IR_COMMAND_RESULT - IR_LINE_BLOCK
    try:
        remote = StationState(registers[at_state])
    except ValueError:
        return Malformed(f"unknown remote station state {registers[at_state]}", _raw(registers))
    try:
        result = CommandResult(registers[at_result])
    except ValueError:
        return Malformed(f"unknown command result {registers[at_result]}", _raw(registers))
    return LineStatus(
        remote_state=remote,
        remote_carrier_id=_join(registers, IR_REMOTE_CARRIER_ID - IR_LINE_BLOCK),
        command_result=result,
        command_seq=registers[IR_COMMAND_SEQ - IR_LINE_BLOCK],
    )
