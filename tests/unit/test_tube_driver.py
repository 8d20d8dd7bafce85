"""The tube-station driver without a serial line: options, GPIO backends, the line block of
the register map, the status verdicts, and the commands against the simulated controller
through an in-memory link whose every read moves the simulated clock on."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from branchline.common.config_reader import ConfigError, SectionReader
from branchline.drivers.base import (
    CancelToken,
    Completion,
    DeviceError,
    DeviceStatus,
    DriverContext,
)
from branchline.drivers.tube_station import driver as driver_module
from branchline.drivers.tube_station import registers as reg
from branchline.drivers.tube_station.driver import ModbusTubeStationDriver
from branchline.drivers.tube_station.gpio import (
    GpioFailed,
    GpioInputs,
    GpioReading,
    PeripheryGpio,
    SimGpio,
    decode_sim_state,
    write_sim_state,
)
from branchline.drivers.tube_station.lifecycle import CarrierState, Limits
from branchline.drivers.tube_station.options import read_tube_station_options
from branchline.drivers.tube_station.registers import (
    CommandResult,
    Fault,
    LineStatus,
    StationSnapshot,
    StationState,
)
from branchline.drivers.tube_station.watch import Observation, StationWatch
from branchline.sim.tube.controller import StationController
from branchline.sim.tube.line import TubeLine
from branchline.sim.tube.rtu import ModbusRefusal

# -- options ---------------------------------------------------------------------------------


def reader(tmp_path: Path, **table: Any) -> SectionReader:
    return SectionReader(tmp_path / "agent.toml", "device.tube_station", table)


def test_options_sim_backend(tmp_path: Path) -> None:
    r = reader(tmp_path, port="sim/dev/tube_station", gpio="sim", gpio_sim_path="sim/gpio/ts")
    options = read_tube_station_options(r)
    r.finish()
    assert options.port == str(tmp_path / "sim/dev/tube_station")
    assert options.gpio_sim_path == tmp_path / "sim/gpio/ts"
    assert (options.baudrate, options.parity, options.stopbits, options.unit_id) == (
        19200,
        "E",
        1,
        1,
    )


def test_options_periphery_backend(tmp_path: Path) -> None:
    r = reader(
        tmp_path,
        port="/dev/ttyUSB0",
        parity="N",
        carrier_present_line=17,
        door_closed_line=27,
        gpio_active_low=True,
    )
    options = read_tube_station_options(r)
    r.finish()
    assert (options.gpio, options.gpio_chip, options.carrier_present_line) == (
        "periphery",
        "/dev/gpiochip0",
        17,
    )
    assert options.stopbits == 2 and options.gpio_active_low


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"gpio": "sim"}, "[device.tube_station] gpio_sim_path: required option is missing"),
        (
            {"gpio": "sim", "gpio_sim_path": "x", "door_closed_line": 3},
            'door_closed_line: only used with gpio = "periphery"',
        ),
        (
            {"gpio_sim_path": "x", "carrier_present_line": 1, "door_closed_line": 2},
            'gpio_sim_path: only used with gpio = "sim"',
        ),
        (
            {"carrier_present_line": 4, "door_closed_line": 4},
            "must differ from carrier_present_line",
        ),
        ({"gpio": "magic"}, "gpio: must be one of periphery, sim; got 'magic'"),
        ({"gpio": "sim", "gpio_sim_path": "x", "baudrate": 1000}, "baudrate: must be one of"),
        ({"gpio": "sim", "gpio_sim_path": "x", "unit_id": 0}, "unit_id: must be at least 1"),
        ({"gpio": "sim", "gpio_sim_path": "x", "parity": "X"}, "parity: must be one of E, O, N"),
        (
            {"gpio": "sim", "gpio_sim_path": "x", "transit_timeout": 0},
            "transit_timeout: must be above",
        ),
    ],
)
def test_bad_options_name_the_option(tmp_path: Path, table: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        read_tube_station_options(reader(tmp_path, port="/dev/ttyUSB0", **table))
    assert message in str(caught.value)


# -- GPIO ------------------------------------------------------------------------------------


def test_sim_gpio_reads_what_the_simulator_writes(tmp_path: Path) -> None:
    path = tmp_path / "gpio" / "tube_station"
    write_sim_state(path, GpioReading(door_closed=True, carrier_present=False))
    gpio = SimGpio(path)
    assert gpio.read() == GpioReading(door_closed=True, carrier_present=False)
    write_sim_state(path, GpioReading(door_closed=False, carrier_present=True))
    assert gpio.read() == GpioReading(door_closed=False, carrier_present=True)
    assert [p.name for p in path.parent.iterdir()] == ["tube_station"]  # no temp files left
    path.write_text('{"door_closed": 1, "carrier_present": false}')
    with pytest.raises(GpioFailed, match="door_closed: expected true or false, got 1"):
        gpio.read()
    path.unlink()
    with pytest.raises(GpioFailed, match="No such file"):
        gpio.read()


@pytest.mark.parametrize("data", [b"", b"[]", b"\xff", b'{"door_closed": true}'])
def test_sim_gpio_state_garbage_is_named(data: bytes) -> None:
    with pytest.raises(ValueError):
        decode_sim_state(data)


def test_periphery_gpio_without_the_chip_is_a_named_error(tmp_path: Path) -> None:
    with pytest.raises(GpioFailed, match=f"cannot open GPIO {tmp_path}/gpiochip9 line 3"):
        PeripheryGpio(str(tmp_path / "gpiochip9"), 3, 4, active_low=False)


# -- the line block of the register map --------------------------------------------------------


@given(
    st.builds(
        LineStatus,
        st.sampled_from(StationState),
        st.integers(0, reg.MAX_U32),
        st.sampled_from(CommandResult),
        st.integers(0, 0xFFFF),
    )
)
def test_line_block_round_trips(line: LineStatus) -> None:
    assert reg.decode_line(reg.encode_line(line)) == line


def test_line_block_by_hand_and_malformed() -> None:
    line = LineStatus(StationState.ARRIVED, 100_000, CommandResult.DONE, 7)
    assert reg.encode_line(line) == [4, 0x0001, 0x86A0, 1, 7]
    for bad, fragment in [
        ([4, 0, 0, 1], "expected 5 line block registers"),
        ([9, 0, 0, 1, 7], "unknown remote station state 9"),
        ([4, 0, 0, 7, 7], "unknown command result 7"),
    ]:
        result = reg.decode_line(bad)
        assert isinstance(result, reg.Malformed) and fragment in result.reason


# -- verdicts ----------------------------------------------------------------------------------


def snapshot(state: StationState = StationState.EMPTY, **changes: Any) -> StationSnapshot:
    base: dict[str, Any] = {
        "state": state,
        "fault": Fault.NONE,
        "present_carrier_id": 0,
        "in_flight_seconds": 0,
        "sent_count": 0,
        "received_count": 0,
        "door_closed": True,
        "carrier_present": False,
        "blower_running": False,
    }
    return StationSnapshot(**{**base, **changes})


def seen(
    snap: StationSnapshot,
    at: float,
    remote: StationState = StationState.EMPTY,
    gpio: GpioReading | None = None,
) -> Observation:
    gpio = gpio or GpioReading(snap.door_closed, snap.carrier_present)
    return Observation(snap, LineStatus(remote, 0, CommandResult.NONE, 0), gpio, at)


def verdict(watch: StationWatch, observation: Observation) -> tuple[DeviceStatus, str]:
    watch.observe(observation)
    result = watch.assess(observation)
    return result.status, result.detail


def test_verdicts_follow_the_carrier() -> None:
    watch = StationWatch(Limits(sending=5, in_transit=10), sensor_grace=1.0)
    loaded = snapshot(StationState.LOADED, present_carrier_id=3, carrier_present=True)
    assert verdict(watch, seen(loaded, 0)) == (DeviceStatus.ONLINE, "loaded")
    assert watch.carrier is not None and watch.carrier.state is CarrierState.LOADED
    sending = snapshot(StationState.SENDING, present_carrier_id=3, carrier_present=True)
    assert verdict(watch, seen(sending, 1)) == (DeviceStatus.BUSY, "carrier sending")
    assert verdict(watch, seen(sending, 6.5)) == (
        DeviceStatus.HARDWARE_ERROR,
        "carrier jammed: did not leave within 5 s",
    )
    transit = snapshot(StationState.IN_TRANSIT, in_flight_seconds=2)
    assert verdict(watch, seen(transit, 9)) == (DeviceStatus.BUSY, "carrier in_transit")
    assert watch.carrier is not None and watch.carrier.carrier_id == 3  # same carrier
    late = snapshot(StationState.IN_TRANSIT, in_flight_seconds=11)
    assert verdict(watch, seen(late, 18)) == (
        DeviceStatus.HARDWARE_ERROR,
        "carrier lost: did not arrive within 10 s",
    )
    assert verdict(watch, seen(snapshot(StationState.JAMMED, fault=Fault.JAM), 19)) == (
        DeviceStatus.HARDWARE_ERROR,
        "carrier jammed in the tube",
    )
    assert verdict(watch, seen(snapshot(fault=Fault.BLOWER_FAILURE), 20))[1] == (
        "station fault: blower failure"
    )


def test_incoming_carrier_is_busy_then_lost() -> None:
    watch = StationWatch(Limits(in_transit=10), sensor_grace=1.0)
    ready = snapshot(StationState.READY_TO_RECEIVE, in_flight_seconds=3)
    assert verdict(watch, seen(ready, 0, StationState.IN_TRANSIT)) == (
        DeviceStatus.BUSY,
        "carrier incoming",
    )
    overdue = snapshot(StationState.READY_TO_RECEIVE, in_flight_seconds=12)
    status, detail = verdict(watch, seen(overdue, 9, StationState.IN_TRANSIT))
    assert status is DeviceStatus.HARDWARE_ERROR and detail.startswith("carrier lost")
    idle = snapshot(StationState.READY_TO_RECEIVE)
    assert verdict(watch, seen(idle, 10)) == (DeviceStatus.ONLINE, "ready_to_receive")


def test_door_verdicts() -> None:
    watch = StationWatch(Limits(), sensor_grace=1.0)
    door = snapshot(StationState.DOOR_FAULT, fault=Fault.DOOR_OPENED_IN_USE, door_closed=False)
    assert verdict(watch, seen(door, 0)) == (DeviceStatus.USER_ERROR, "door open while in use")
    latched = snapshot(fault=Fault.DOOR_OPENED_IN_USE)
    assert verdict(watch, seen(latched, 1))[0] is DeviceStatus.USER_ERROR
    error = watch.assess(seen(latched, 1)).error()
    assert error is not None and error.completion is Completion.USER_ERROR
    assert error.code == "door_open"


def test_sensor_disagreement_only_once_it_persists() -> None:
    watch = StationWatch(Limits(), sensor_grace=1.0)
    snap = snapshot(StationState.LOADED, present_carrier_id=3, carrier_present=True)
    stuck = GpioReading(door_closed=True, carrier_present=False)
    assert verdict(watch, seen(snap, 0, gpio=stuck))[0] is DeviceStatus.ONLINE
    assert verdict(watch, seen(snap, 0.9, gpio=stuck))[0] is DeviceStatus.ONLINE
    assert verdict(watch, seen(snap, 1.2, gpio=stuck)) == (
        DeviceStatus.HARDWARE_ERROR,
        "sensor disagreement: carrier GPIO says absent, controller says present",
    )
    assert verdict(watch, seen(snap, 1.3))[0] is DeviceStatus.ONLINE  # agree again: cleared
    assert verdict(watch, seen(snap, 1.4, gpio=stuck))[0] is DeviceStatus.ONLINE


# -- the driver against the simulated controller -------------------------------------------------


class SimClock:
    def __init__(self) -> None:
        self.now = 0.0
        self._queue: list[tuple[float, int, Callable[[], None], list[bool]]] = []
        self._order = itertools.count()

    def call_later(self, delay: float, fn: Callable[[], None]) -> Any:
        cancelled = [False]
        heapq.heappush(self._queue, (self.now + delay, next(self._order), fn, cancelled))

        class Handle:
            def cancel(self) -> None:
                cancelled[0] = True

        return Handle()

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        while self._queue and self._queue[0][0] <= end:
            at, _, fn, cancelled = heapq.heappop(self._queue)
            self.now = at
            if not cancelled[0]:
                fn()
        self.now = end


class MemoryLink:
    """Stands in for ModbusLink: the controller's registers, 0.1 simulated s per request."""

    def __init__(self, controller: StationController, clock: SimClock) -> None:
        self.controller = controller
        self.clock = clock
        self.requests = 0

    def _tick(self) -> None:
        self.requests += 1
        self.clock.advance(0.1)

    def _refused(self, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except ModbusRefusal as refusal:
            raise DeviceError(Completion.HARDWARE_ERROR, "modbus_exception", str(refusal)) from None

    def read_input_registers(self, address: int, count: int) -> list[int]:
        self._tick()
        return self._refused(lambda: self.controller.read_input_registers(address, count))

    def read_holding_registers(self, address: int, count: int) -> list[int]:
        self._tick()
        return self._refused(lambda: self.controller.read_holding_registers(address, count))

    def read_discrete_inputs(self, address: int, count: int) -> list[bool]:
        self._tick()
        return self._refused(lambda: self.controller.read_discrete_inputs(address, count))

    def write_registers(self, address: int, values: Sequence[int]) -> None:
        self._tick()
        self._refused(lambda: self.controller.write_registers(address, values))

    def close(self) -> None:
        pass


class LineGpio(GpioInputs):
    def __init__(self, line: TubeLine) -> None:
        self.line = line

    def read(self) -> GpioReading:
        station = self.line.terminal
        return GpioReading(station.door_sensor_closed, station.present)

    def close(self) -> None:
        pass

    def describe(self) -> str:
        return "memory"


@pytest.fixture
def rig(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[ModbusTubeStationDriver, TubeLine]:
    monkeypatch.setattr(driver_module, "STEP", 0.005)  # simulated time moves with requests
    clock = SimClock()
    line = TubeLine(clock.call_later, lambda: clock.now, travel_time=1.0)
    r = reader(tmp_path, port="/dev/null", gpio="sim", gpio_sim_path="x", transit_timeout=3)
    driver = ModbusTubeStationDriver(
        DriverContext("T-1", "BR-1", "tube_station"), read_tube_station_options(r)
    )
    driver._link = MemoryLink(StationController(line), clock)  # type: ignore[assignment]
    driver._gpio = LineGpio(line)
    return driver, line


def test_carrier_out_and_back(rig: tuple[ModbusTubeStationDriver, TubeLine]) -> None:
    driver, line = rig
    cancel = CancelToken()
    assert driver.poll().status is DeviceStatus.ONLINE
    line.load(42)
    sent = driver.send({"carrier_id": 42}, cancel)
    assert sent["state"] == "arrived" and sent["carrier_id"] == 42
    assert "here:in_transit far:ready_to_receive" in sent["states"]
    assert line.backoffice.carrier_id == 42
    line.backoffice_return()
    arrived = driver.wait_arrival({"timeout_s": 10}, cancel)
    assert arrived["carrier_id"] == 42
    assert driver.open_door({}, cancel) == {"door": "open", "state": "arrived"}
    line.remove()
    assert driver.wait_removed({}, cancel)["state"] == "empty"
    status = driver.status({}, cancel)
    assert (status["state"], status["door"], status["sent_count"], status["received_count"]) == (
        "empty",
        "closed",
        1,
        1,
    )


def test_send_test_reports_each_state(rig: tuple[ModbusTubeStationDriver, TubeLine]) -> None:
    driver, line = rig
    with pytest.raises(DeviceError) as caught:
        driver.send_test({}, CancelToken())
    assert caught.value.completion is Completion.USER_ERROR and caught.value.code == "not_loaded"
    line.load(900)
    result = driver.send_test({}, CancelToken())
    assert result["result"] == "passed" and result["carrier_id"] == 900
    assert result["states"][0] == "here:loaded far:empty"
    # Snapshot and line block are two reads, so a pair may straddle a change; the far
    # station is still seen holding the carrier at some point.
    assert any(pair.endswith("far:arrived") for pair in result["states"])
    assert result["states"][-1] == "here:arrived far:empty"


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({}, "carrier_id: required"),
        ({"carrier_id": "abc"}, "carrier_id: expected a whole number"),
        ({"carrier_id": True}, "carrier_id: expected a whole number"),
        ({"carrier_id": 0}, "carrier_id: expected a whole number"),
        ({"carrier_id": 1, "speed": 2}, "speed: unknown parameter"),
    ],
)
def test_bad_send_params(
    rig: tuple[ModbusTubeStationDriver, TubeLine], params: dict[str, Any], fragment: str
) -> None:
    driver, _ = rig
    with pytest.raises(DeviceError) as caught:
        driver.send(params, CancelToken())
    assert caught.value.completion is Completion.INVALID_DATA and fragment in caught.value.message


def test_refusals_map_to_completions(rig: tuple[ModbusTubeStationDriver, TubeLine]) -> None:
    driver, line = rig
    cancel = CancelToken()
    line.load(5)
    with pytest.raises(DeviceError) as caught:
        driver.send({"carrier_id": 6}, cancel)
    assert (
        caught.value.completion is Completion.INVALID_DATA and caught.value.code == "wrong_carrier"
    )
    with pytest.raises(DeviceError) as caught:
        driver.wait_arrival({}, cancel)
    assert caught.value.code == "wrong_state"
    with pytest.raises(DeviceError) as caught:
        driver.wait_arrival({"timeout_s": -1}, cancel)
    assert caught.value.completion is Completion.INVALID_DATA
    line.set_door_forced(True)
    with pytest.raises(DeviceError) as caught:
        driver.send({"carrier_id": 5}, cancel)
    assert caught.value.completion is Completion.USER_ERROR and caught.value.code == "door_open"
    with pytest.raises(DeviceError) as caught:
        driver.reset_fault({}, cancel)
    assert caught.value.completion is Completion.USER_ERROR
    assert "refused reset_fault: door open" in caught.value.message
    line.set_door_forced(False)
    assert driver.reset_fault({}, cancel)["status"] == "online"


def test_jam_and_lost_during_send(rig: tuple[ModbusTubeStationDriver, TubeLine]) -> None:
    driver, line = rig
    cancel = CancelToken()
    line.load(5)
    line.set_jam(True)
    with pytest.raises(DeviceError) as caught:
        driver.send({"carrier_id": 5}, cancel)
    assert caught.value.completion is Completion.HARDWARE_ERROR and caught.value.code == "jam"
    assert driver.poll().detail == "carrier jammed in the tube"
    line.set_jam(False)
    assert driver.reset_fault({}, cancel)["state"] == "loaded"
    line.set_lost(True)
    with pytest.raises(DeviceError) as caught:
        driver.send({"carrier_id": 5}, cancel)
    assert caught.value.code == "carrier_lost"
    assert driver.poll().status is DeviceStatus.HARDWARE_ERROR
    assert driver.reset_fault({}, cancel)["state"] == "empty"
    assert driver.poll().status is DeviceStatus.ONLINE


def test_cancel_stops_waiting(rig: tuple[ModbusTubeStationDriver, TubeLine]) -> None:
    driver, _ = rig
    cancel = CancelToken()
    cancel.cancel("caller went away")
    with pytest.raises(DeviceError) as caught:
        driver.wait_arrival({"timeout_s": 30}, cancel)
    assert caught.value.completion is Completion.CANCELED
