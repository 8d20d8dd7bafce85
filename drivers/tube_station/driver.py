"""Pneumatic tube station driver: Modbus RTU to the station controller, GPIO for its sensors.

Options: ``options.py`` (the ``[device.tube_station]`` table).

The register map is in ``registers.py``. Every action is one write of holding registers 0-2
(command + carrier id); the driver then waits until the controller has cleared COMMAND and
reads COMMAND_RESULT / COMMAND_SEQ to learn whether *its* command was done or refused.

Status: a jam (controller fault, or a carrier that does not leave within ``send_timeout``)
and a lost carrier (in flight longer than ``transit_timeout``) are hardware errors, as is a
GPIO sensor that disagrees with the controller for longer than ``sensor_grace``; a door open
while the station is in use is a user error; a carrier on its way is ``busy``. No reply from
the controller is ``offline``; a vanished port is ``no_device``.
"""

from __future__ import annotations

import time
from typing import Any

from branchline.common.config_reader import SectionReader
from branchline.drivers import params as param
from branchline.drivers.base import (
    CancelToken,
    CommandCanceled,
    CommandHandler,
    Completion,
    DeviceError,
    DeviceGone,
    DeviceStatus,
    Driver,
    DriverContext,
    SelfTestResult,
    StatusReport,
)
from branchline.drivers.tube_station import registers as reg
from branchline.drivers.tube_station.gpio import GpioFailed, GpioInputs, PeripheryGpio, SimGpio
from branchline.drivers.tube_station.lifecycle import Limits
from branchline.drivers.tube_station.modbus_link import ModbusLink, NoResponse
from branchline.drivers.tube_station.options import TubeStationOptions, read_tube_station_options
from branchline.drivers.tube_station.registers import (
    Command,
    CommandRequest,
    CommandResult,
    StationState,
)
from branchline.drivers.tube_station.watch import (
    Assessment,
    Observation,
    StationWatch,
    facts,
    fault_name,
    state_name,
)

STEP = 0.1  # seconds between looks at the station while waiting
ACCEPT_TIMEOUT = 2.0  # the controller takes a command within this long or is broken
DEFAULT_WAIT = 60.0
MAX_WAIT = 3600.0

REFUSALS: dict[CommandResult, tuple[Completion, str]] = {
    CommandResult.WRONG_STATE: (Completion.SEQUENCE_ERROR, "wrong_state"),
    CommandResult.DOOR_OPEN: (Completion.USER_ERROR, "door_open"),
    CommandResult.FAULT_ACTIVE: (Completion.HARDWARE_ERROR, "fault_active"),
    CommandResult.WRONG_CARRIER: (Completion.INVALID_DATA, "wrong_carrier"),
    CommandResult.REMOTE_NOT_READY: (Completion.DEVICE_NOT_READY, "far_station_not_ready"),
}


def _carrier_id(params: dict[str, Any], *, required: bool) -> int:
    # Carrier ids are typed by people (teller screens, diag), so a string of digits is fine.
    if not required and params.get("carrier_id") is None:
        return 0  # whatever carrier is present
    return param.whole_number(params, "carrier_id", None, 1, reg.MAX_U32, digits_ok=True)


def where(seen: Observation) -> str:
    """One line for a states-seen list: this station and the far one."""
    return f"here:{state_name(seen.snapshot.state)} far:{state_name(seen.line.remote_state)}"


class ModbusTubeStationDriver(Driver):
    device_class = "tube_station"

    def __init__(self, context: DriverContext, options: TubeStationOptions) -> None:
        super().__init__(context, options)
        self.options = options
        self._link: ModbusLink | None = None
        self._gpio: GpioInputs | None = None
        self._watch = StationWatch(
            Limits(sending=options.send_timeout, in_transit=options.transit_timeout),
            options.sensor_grace,
        )

    @classmethod
    def read_options(cls, reader: SectionReader) -> TubeStationOptions:
        return read_tube_station_options(reader)

    # -- life cycle ---------------------------------------------------------------------------

    def _open_gpio(self) -> GpioInputs:
        o = self.options
        if o.gpio == "sim":
            assert o.gpio_sim_path is not None
            try:
                return SimGpio(o.gpio_sim_path)
            except GpioFailed as exc:
                # The simulator has not written its sensors yet: like a port not there yet.
                raise DeviceGone(exc.message) from None
        return PeripheryGpio(
            o.gpio_chip, o.carrier_present_line, o.door_closed_line, o.gpio_active_low
        )

    def open(self) -> None:
        o = self.options
        link = ModbusLink(
            o.port,
            baudrate=o.baudrate,
            parity=o.parity,
            stopbits=o.stopbits,
            unit_id=o.unit_id,
            timeout=o.response_timeout,
            retries=o.retries,
            tap=self.tap,
        )
        link.open()
        try:
            self._gpio = self._open_gpio()
        except DeviceError:
            link.close()
            raise
        self._link = link
        self._watch.reset()

    def close(self) -> None:
        link, self._link = self._link, None
        gpio, self._gpio = self._gpio, None
        if link is not None:
            link.close()
        if gpio is not None:
            gpio.close()

    def _line(self) -> ModbusLink:
        if self._link is None or self._gpio is None:
            raise DeviceGone("tube station is not open")
        return self._link

    # -- reading the station -------------------------------------------------------------------

    def _read_line_block(self) -> reg.LineStatus:
        decoded = reg.decode_line(
            self._line().read_input_registers(reg.IR_LINE_BLOCK, reg.LINE_COUNT)
        )
        if isinstance(decoded, reg.Malformed):
            raise DeviceError(
                Completion.HARDWARE_ERROR,
                "malformed_registers",
                f"station controller line block: {decoded.reason}",
            )
        return decoded

    def _observe(self) -> Observation:
        link = self._line()
        registers = link.read_input_registers(0, reg.INPUT_COUNT)
        inputs = link.read_discrete_inputs(0, reg.DISCRETE_COUNT)
        snapshot = reg.decode_snapshot(registers, inputs)
        if isinstance(snapshot, reg.Malformed):
            raise DeviceError(
                Completion.HARDWARE_ERROR,
                "malformed_registers",
                f"station controller snapshot: {snapshot.reason}",
            )
        line = self._read_line_block()
        assert self._gpio is not None
        seen = Observation(snapshot, line, self._gpio.read(), time.monotonic())
        self._watch.observe(seen)
        return seen

    def _assess(self) -> tuple[Observation, Assessment]:
        seen = self._observe()
        return seen, self._watch.assess(seen)

    def poll(self) -> StatusReport:
        try:
            seen, verdict = self._assess()
        except NoResponse as exc:
            return StatusReport(DeviceStatus.OFFLINE, exc.message)
        except GpioFailed as exc:
            return StatusReport(DeviceStatus.HARDWARE_ERROR, exc.message)
        except DeviceGone:
            raise
        except DeviceError as exc:
            return StatusReport(DeviceStatus.HARDWARE_ERROR, exc.message)
        return StatusReport(verdict.status, verdict.detail, facts(seen))

    def capabilities(self) -> dict[str, str]:
        return {
            "protocol": "modbus_rtu",
            "unit_id": str(self.options.unit_id),
            "gpio": self.options.gpio,
            "send_timeout_s": f"{self.options.send_timeout:g}",
            "transit_timeout_s": f"{self.options.transit_timeout:g}",
            "send_test": "true",
        }

    # -- commands to the controller ------------------------------------------------------------

    def _command(self, command: Command, carrier_id: int = 0) -> reg.LineStatus:
        """Write one command and return the line block once the controller has done it."""
        link = self._line()
        before = self._read_line_block().command_seq
        link.write_registers(
            reg.HR_COMMAND, reg.encode_command(CommandRequest(command, carrier_id))
        )
        deadline = time.monotonic() + ACCEPT_TIMEOUT
        while link.read_holding_registers(reg.HR_COMMAND, 1)[0] != Command.NONE:
            if time.monotonic() > deadline:
                raise DeviceError(
                    Completion.HARDWARE_ERROR,
                    "command_not_taken",
                    f"station controller did not take {command.name.lower()} "
                    f"within {ACCEPT_TIMEOUT:.0f} s",
                )
            time.sleep(0.02)
        line = self._read_line_block()
        if line.command_seq == before:
            raise DeviceError(
                Completion.HARDWARE_ERROR,
                "command_not_taken",
                f"station controller cleared {command.name.lower()} without taking it",
            )
        if line.command_result is not CommandResult.DONE:
            completion, code = REFUSALS.get(
                line.command_result, (Completion.HARDWARE_ERROR, "refused")
            )
            seen = self._observe()
            reason = line.command_result.name.lower().replace("_", " ")
            raise DeviceError(
                completion,
                code,
                f"tube station refused {command.name.lower()}: {reason} "
                f"(station {state_name(seen.snapshot.state)}, "
                f"door {'closed' if seen.door_closed else 'open'}, "
                f"fault {fault_name(seen.snapshot.fault)})",
            )
        return line

    def _fail_if_faulty(self, verdict: Assessment) -> None:
        error = verdict.error()
        if error is not None:
            raise error

    def _pause(self, cancel: CancelToken) -> None:
        if cancel.wait(STEP):
            raise CommandCanceled(cancel.reason)

    def _need_door_closed(self, seen: Observation, action: str) -> None:
        if not seen.door_closed:
            raise DeviceError(
                Completion.USER_ERROR,
                "door_open",
                f"tube station: door is open; close it to {action}",
            )

    # -- command handlers ----------------------------------------------------------------------

    def status(self, params: dict[str, Any], cancel: CancelToken) -> dict[str, Any]:
        param.only(params, ())
        seen, verdict = self._assess()
        s = seen.snapshot
        return {
            "status": verdict.status.value,
            "detail": verdict.detail,
            "state": state_name(s.state),
            "fault": fault_name(s.fault),
            "carrier_id": s.present_carrier_id,
            "door": "closed" if seen.door_closed else "open",
            "present": s.carrier_present,
            "blower": s.blower_running,
            "in_flight_seconds": s.in_flight_seconds,
            "sent_count": s.sent_count,
            "received_count": s.received_count,
            "far_station": state_name(seen.line.remote_state),
            "far_carrier_id": seen.line.remote_carrier_id,
            "gpio": {
                "door_closed": seen.gpio.door_closed,
                "carrier_present": seen.gpio.carrier_present,
            },
        }

    def _ready_to_send(self, seen: Observation, carrier_id: int, back: bool) -> int:
        """The carrier to send, once the station is loaded with it and its door is closed."""
        s = seen.snapshot
        if s.state is not StationState.LOADED or not (
            s.carrier_present and seen.gpio.carrier_present
        ):
            what = "an empty test carrier" if back else "a carrier"
            raise DeviceError(
                Completion.USER_ERROR
                if s.state is StationState.EMPTY
                else Completion.SEQUENCE_ERROR,
                "not_loaded",
                f"tube station is {state_name(s.state)}: place {what} in the station and close "
                "the door first",
            )
        self._need_door_closed(seen, "send")
        if carrier_id and s.present_carrier_id and carrier_id != s.present_carrier_id:
            raise DeviceError(
                Completion.INVALID_DATA,
                "wrong_carrier",
                f"carrier_id: the station holds carrier {s.present_carrier_id}, not {carrier_id}",
            )
        return carrier_id or s.present_carrier_id

    def _dispatch(
        self, command: Command, carrier_id: int, cancel: CancelToken, back: bool
    ) -> dict[str, Any]:
        """Send the carrier and follow it until it arrives at the far station (or, for a test
        carrier, back here); every distinct state pair seen is reported."""
        seen, verdict = self._assess()
        self._fail_if_faulty(verdict)
        carrier_id = self._ready_to_send(seen, carrier_id, back)
        started = time.monotonic()
        states = [where(seen)]
        self._command(command, carrier_id)
        left = False
        while True:
            self._pause(cancel)
            seen, verdict = self._assess()
            if where(seen) != states[-1]:
                states.append(where(seen))
            self._fail_if_faulty(verdict)
            s = seen.snapshot
            left = left or s.state in (StationState.SENDING, StationState.IN_TRANSIT)
            if back:
                if s.state is StationState.ARRIVED and s.present_carrier_id == carrier_id:
                    break
            elif (
                seen.line.remote_state is StationState.ARRIVED
                and seen.line.remote_carrier_id == carrier_id
            ) or (left and s.state is StationState.EMPTY and not seen.incoming):
                # The far staff may take it out between two looks: an emptied line after a
                # flight without a fault is a delivery too.
                break
            elif s.state is StationState.LOADED and left:
                raise DeviceError(
                    Completion.HARDWARE_ERROR,
                    "send_aborted",
                    "the controller aborted the send: the carrier is back in the station",
                )
        return {
            "state": "arrived",
            "carrier_id": carrier_id,
            "seconds": round(time.monotonic() - started, 3),
            "states": states,
        }

    def send(self, params: dict[str, Any], cancel: CancelToken) -> dict[str, Any]:
        param.only(params, {"carrier_id"})
        carrier_id = _carrier_id(params, required=True)
        return self._dispatch(Command.SEND, carrier_id, cancel, back=False)

    def send_test(self, params: dict[str, Any], cancel: CancelToken) -> dict[str, Any]:
        """Technician: send the (empty) test carrier in the station to the far station, which
        returns it by itself; passes when it is back here."""
        param.only(params, {"carrier_id"})
        result = self._dispatch(
            Command.SEND_TEST, _carrier_id(params, required=False), cancel, back=True
        )
        return {**result, "result": "passed"}

    def prepare_receive(self, params: dict[str, Any], cancel: CancelToken) -> dict[str, Any]:
        param.only(params, ())
        seen, verdict = self._assess()
        self._fail_if_faulty(verdict)
        self._need_door_closed(seen, "receive")
        if seen.snapshot.state is not StationState.READY_TO_RECEIVE:
            self._command(Command.PREPARE_RECEIVE)
        return {"state": state_name(StationState.READY_TO_RECEIVE)}

    def wait_arrival(self, params: dict[str, Any], cancel: CancelToken) -> dict[str, Any]:
        param.only(params, {"timeout_s"})
        timeout = param.seconds(params, "timeout_s", DEFAULT_WAIT, maximum=MAX_WAIT, text_ok=True)
        started = time.monotonic()
        seen, verdict = self._assess()
        self._fail_if_faulty(verdict)
        if seen.snapshot.state is StationState.EMPTY:
            self._need_door_closed(seen, "receive")
            self._command(Command.PREPARE_RECEIVE)
        elif seen.snapshot.state not in (StationState.READY_TO_RECEIVE, StationState.ARRIVED):
            raise DeviceError(
                Completion.SEQUENCE_ERROR,
                "wrong_state",
                f"tube station is {state_name(seen.snapshot.state)}: it cannot receive a carrier",
            )
        while seen.snapshot.state is not StationState.ARRIVED:
            if time.monotonic() - started > timeout:
                raise DeviceError(
                    Completion.TIMEOUT, "no_arrival", f"no carrier arrived within {timeout:g} s"
                )
            self._pause(cancel)
            seen, verdict = self._assess()
            self._fail_if_faulty(verdict)
        return {
            "state": "arrived",
            "carrier_id": seen.snapshot.present_carrier_id,
            "seconds": round(time.monotonic() - started, 3),
        }

    def _door(self, command: Command) -> dict[str, Any]:
        self._command(command)
        seen = self._observe()
        return {
            "door": "closed" if seen.door_closed else "open",
            "state": state_name(seen.snapshot.state),
        }

    def open_door(self, params: dict[str, Any], cancel: CancelToken) -> dict[str, Any]:
        param.only(params, ())
        return self._door(Command.OPEN_DOOR)

    def close_door(self, params: dict[str, Any], cancel: CancelToken) -> dict[str, Any]:
        param.only(params, ())
        return self._door(Command.CLOSE_DOOR)

    def wait_removed(self, params: dict[str, Any], cancel: CancelToken) -> dict[str, Any]:
        """Wait until the customer has taken the carrier out, then (by default) close the door."""
        param.only(params, {"timeout_s", "close"})
        timeout = param.seconds(params, "timeout_s", DEFAULT_WAIT, maximum=MAX_WAIT, text_ok=True)
        close = param.flag(params, "close", True)
        started = time.monotonic()
        seen = self._observe()
        if seen.snapshot.carrier_present and seen.door_closed:
            raise DeviceError(
                Completion.SEQUENCE_ERROR,
                "door_closed",
                "the door is closed: open it (open_door) before waiting for the carrier to go",
            )
        while seen.snapshot.carrier_present or seen.gpio.carrier_present:
            if time.monotonic() - started > timeout:
                raise DeviceError(
                    Completion.TIMEOUT, "not_removed", f"carrier not taken out within {timeout:g} s"
                )
            self._pause(cancel)
            seen, verdict = self._assess()
            if verdict.status is DeviceStatus.HARDWARE_ERROR:
                self._fail_if_faulty(verdict)
        if close and not seen.door_closed:
            self._command(Command.CLOSE_DOOR)
            seen = self._observe()
        return {
            "state": state_name(seen.snapshot.state),
            "door": "closed" if seen.door_closed else "open",
            "seconds": round(time.monotonic() - started, 3),
        }

    def reset_fault(self, params: dict[str, Any], cancel: CancelToken) -> dict[str, Any]:
        param.only(params, ())
        self._command(Command.RESET_FAULT)
        self._watch.reset()
        seen, verdict = self._assess()
        return {
            "state": state_name(seen.snapshot.state),
            "fault": fault_name(seen.snapshot.fault),
            "status": verdict.status.value,
        }

    def commands(self) -> dict[str, CommandHandler]:
        return {
            "status": self.status,
            "send": self.send,
            "prepare_receive": self.prepare_receive,
            "wait_arrival": self.wait_arrival,
            "open_door": self.open_door,
            "close_door": self.close_door,
            "wait_removed": self.wait_removed,
            "reset_fault": self.reset_fault,
            "send_test": self.send_test,
        }

    def self_test(self, cancel: CancelToken) -> SelfTestResult:
        """Reads every register block and both GPIO inputs; moves nothing (send_test does)."""
        seen, verdict = self._assess()
        if verdict.status in (DeviceStatus.HARDWARE_ERROR, DeviceStatus.USER_ERROR):
            return SelfTestResult(False, verdict.detail)
        return SelfTestResult(
            True,
            f"controller unit {self.options.unit_id} answers, station "
            f"{state_name(seen.snapshot.state)}, sensors agree; use send_test to move a carrier",
        )
