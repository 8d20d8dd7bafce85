"""The card-reader driver against the simulated reader over a real pseudo-terminal, in process."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from branchline.common.config_reader import ConfigError, SectionReader
from branchline.drivers.base import (
    CancelToken,
    Completion,
    DeviceError,
    DeviceGone,
    DeviceStatus,
    DriverContext,
)
from branchline.drivers.card_reader.driver import Crt591CardReaderDriver
from branchline.drivers.card_reader.options import CardReaderOptions
from branchline.sim.card.inprocess import InProcessSim
from branchline.sim.devices.base import SimError
from branchline.sim.devices.card_reader import SimulatedCardReader

PAN = "4761739001010010"


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[InProcessSim]:
    with InProcessSim(SimulatedCardReader(tmp_path, travel_seconds=0.01), tmp_path) as running:
        yield running


@pytest.fixture
def driver(sim: InProcessSim) -> Iterator[Crt591CardReaderDriver]:
    options = CardReaderOptions(port=str(sim.path), baudrate=38400, insert_poll=0.02)
    drv = Crt591CardReaderDriver(DriverContext("T-1", "BR-1", "card_reader"), options)
    drv.open()
    yield drv
    drv.close()


def run(driver: Crt591CardReaderDriver, name: str, **params: Any) -> dict[str, Any]:
    return driver.commands()[name](params, CancelToken())


def in_background(fn: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def body() -> None:
        try:
            outcome["result"] = fn()
        except Exception as exc:  # handed to the test thread
            outcome["error"] = exc

    thread = threading.Thread(target=body)
    thread.start()
    return thread, outcome


def until(predicate: Callable[[], bool], timeout: float = 3) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


def insert(sim: InProcessSim, driver: Crt591CardReaderDriver, card: str = "visa") -> None:
    device = sim.device
    assert isinstance(device, SimulatedCardReader)
    thread, outcome = in_background(lambda: run(driver, "accept_card", timeout_s=5))
    until(lambda: device.insertion_enabled)
    sim.call(device.act, "insert", {"card": card})
    thread.join(5)
    assert outcome == {"result": {"card": "inserted"}}
    assert not device.insertion_enabled, "the gate is closed again once the card is in"


def reader(sim: InProcessSim) -> SimulatedCardReader:
    assert isinstance(sim.device, SimulatedCardReader)
    return sim.device


def test_full_read_eject_and_take(
    sim: InProcessSim, driver: Crt591CardReaderDriver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert driver.poll().status is DeviceStatus.ONLINE
    insert(sim, driver)
    assert driver.poll().facts["card_position"] == "inside"
    tracks = run(driver, "read_tracks")
    assert tracks["track1_present"] and tracks["track2_present"] and not tracks["track3_present"]
    assert tracks["pan"] == PAN and tracks["pan_masked"] == "476173******0010"
    assert tracks["expiry"] == "2031-12" and tracks["cardholder_name"] == "TEST/VISA CARD"
    assert tracks["track2"].startswith(f";{PAN}=3112")
    chip = run(driver, "read_chip")
    assert chip["pan"] == PAN and chip["aid"] == "A0000000031010"
    assert chip["app_label"] == "VISA CREDIT" and chip["expiry"] == "2031-12"
    assert chip["cardholder_name"] == "TEST/VISA CARD" and chip["atr"].startswith("3B")
    assert not reader(sim).chip_powered, "the chip is powered off after the read"

    thread, outcome = in_background(lambda: run(driver, "eject", take_timeout_s=5))
    until(lambda: reader(sim).position.name == "AT_GATE")
    assert sim.call(reader(sim).act, "take", {}) == {"taken": "true"}
    thread.join(5)
    assert outcome == {"result": {"card": "taken"}}
    assert PAN not in caplog.text and "%B" not in caplog.text


def test_card_not_taken_is_retained(sim: InProcessSim, driver: Crt591CardReaderDriver) -> None:
    insert(sim, driver, "magstripe")
    before = run(driver, "bin_count")["bin_count"]
    sim.device.set_fault("card_not_taken", True)
    thread, outcome = in_background(lambda: run(driver, "eject", take_timeout_s=0.3))
    until(lambda: reader(sim).position.name == "AT_GATE")
    assert sim.call(reader(sim).act, "take", {}) == {"taken": "false"}
    thread.join(5)
    assert outcome == {"result": {"card": "retained", "bin_count": before + 1}}
    assert run(driver, "status")["card_position"] == "none"


def test_magstripe_card_has_no_chip(sim: InProcessSim, driver: Crt591CardReaderDriver) -> None:
    insert(sim, driver, "magstripe")
    assert run(driver, "read_tracks")["pan_masked"] == "555555******4444"
    with pytest.raises(DeviceError) as raised:
        run(driver, "read_chip")
    assert (raised.value.completion, raised.value.code) == (
        Completion.USER_ERROR,
        "ic_activation_failed",
    )


def test_jam_until_initialised_after_the_fault_clears(
    sim: InProcessSim, driver: Crt591CardReaderDriver
) -> None:
    insert(sim, driver)
    sim.device.set_fault("jam", True)
    with pytest.raises(DeviceError) as raised:
        run(driver, "retain")
    assert (raised.value.completion, raised.value.code) == (Completion.HARDWARE_ERROR, "card_jam")
    report = driver.poll()
    assert (report.status, report.detail) == (DeviceStatus.HARDWARE_ERROR, "card jam")
    with pytest.raises(DeviceError):
        run(driver, "initialise")  # still jammed while the fault is on
    sim.device.set_fault("jam", False)
    assert driver.poll().detail == "card jam", "a jam stays until the reader is initialised"
    assert run(driver, "initialise", card="retain")["card_position"] == "none"
    assert driver.poll().status is DeviceStatus.ONLINE


def test_nak_storm_then_recovery(sim: InProcessSim, driver: Crt591CardReaderDriver) -> None:
    sim.device.set_fault("nak_storm", True)
    report = driver.poll()
    assert report.status is DeviceStatus.HARDWARE_ERROR and "NAK storm" in report.detail
    with pytest.raises(DeviceError) as raised:
        run(driver, "bin_count")
    assert raised.value.code == "nak_storm"
    sim.device.set_fault("nak_storm", False)
    assert driver.poll().status is DeviceStatus.ONLINE


def test_mute_chip_fault_and_card(sim: InProcessSim, driver: Crt591CardReaderDriver) -> None:
    insert(sim, driver)
    sim.device.set_fault("mute_chip", True)
    with pytest.raises(DeviceError) as raised:
        run(driver, "read_chip")
    assert raised.value.code == "ic_activation_failed"
    sim.device.set_fault("mute_chip", False)
    assert run(driver, "read_chip")["pan"] == PAN
    run(driver, "retain")
    insert(sim, driver, "mute_chip")
    with pytest.raises(DeviceError):
        run(driver, "read_chip")
    assert run(driver, "read_tracks")["pan_masked"] == "411111******1111"


def test_accept_card_timeout_and_cancel(sim: InProcessSim, driver: Crt591CardReaderDriver) -> None:
    with pytest.raises(DeviceError) as raised:
        run(driver, "accept_card", timeout_s=0.2)
    assert (raised.value.completion, raised.value.code) == (Completion.TIMEOUT, "no_card_inserted")
    assert not reader(sim).insertion_enabled
    cancel = CancelToken()
    thread, outcome = in_background(
        lambda: driver.accept_card({"timeout_s": 10}, cancel)  # noqa: B023
    )
    until(lambda: reader(sim).insertion_enabled)
    cancel.cancel("customer pressed cancel")
    thread.join(5)
    assert outcome["error"].completion is Completion.CANCELED
    assert not reader(sim).insertion_enabled


def test_bin_full_is_a_user_error(sim: InProcessSim, driver: Crt591CardReaderDriver) -> None:
    assert run(driver, "set_bin_count", count=50) == {"bin_count": 50}
    report = driver.poll()
    assert (report.status, report.detail) == (DeviceStatus.USER_ERROR, "capture bin full")
    assert report.facts["bin_count"] == "50"
    insert(sim, driver)
    with pytest.raises(DeviceError) as raised:
        run(driver, "retain")
    assert raised.value.code == "bin_full"
    run(driver, "set_bin_count")
    assert driver.poll().status is DeviceStatus.ONLINE
    assert run(driver, "retain") == {"bin_count": 1}


def test_commands_without_a_card_and_bad_parameters(driver: Crt591CardReaderDriver) -> None:
    for name in ("read_tracks", "read_chip", "eject", "retain"):
        with pytest.raises(DeviceError) as raised:
            run(driver, name)
        assert (raised.value.completion, raised.value.code) == (
            Completion.SEQUENCE_ERROR,
            "no_card",
        )
    bad: list[tuple[str, dict[str, Any], str]] = [
        ("accept_card", {"timeout_s": "soon"}, "timeout_s"),
        ("accept_card", {"timeout_s": -1}, "timeout_s"),
        ("eject", {"take_timeout_s": 0}, "take_timeout_s"),
        ("initialise", {"card": "shred"}, "card"),
        ("set_bin_count", {"count": 1000}, "count"),
        ("status", {"verbose": True}, "verbose"),
    ]
    for name, params, field in bad:
        with pytest.raises(DeviceError) as raised:
            run(driver, name, **params)
        assert raised.value.completion is Completion.INVALID_DATA
        assert raised.value.message.startswith(field), raised.value.message


def test_unplug_raises_device_gone_and_reopen_works(
    sim: InProcessSim, driver: Crt591CardReaderDriver
) -> None:
    sim.unplug()
    with pytest.raises(DeviceGone):
        driver.poll()
    driver.close()
    sim.replug()
    driver.open()
    assert driver.poll().status is DeviceStatus.ONLINE


def test_silent_reader_is_offline(tmp_path: Path) -> None:
    silent = SimulatedCardReader(tmp_path)
    silent.on_bytes = lambda data: None  # type: ignore[method-assign]
    with InProcessSim(silent, tmp_path) as sim:
        options = CardReaderOptions(port=str(sim.path), ack_timeout=0.1)
        drv = Crt591CardReaderDriver(DriverContext("T-1", "BR-1", "card_reader"), options)
        drv.open()
        try:
            report = drv.poll()
            assert report.status is DeviceStatus.OFFLINE
            with pytest.raises(DeviceError) as raised:
                run(drv, "status")
            assert raised.value.code == "no_ack"
        finally:
            drv.close()


def test_self_test_and_capabilities(driver: Crt591CardReaderDriver) -> None:
    result = driver.self_test(CancelToken())
    assert result.ok and "CRT-591-SIM" in result.detail
    caps = driver.capabilities()
    assert caps["capture_bin_size"] == "50" and caps["chip"] == "emv_contact"
    assert caps["tracks"] == "1,2,3"


def test_sim_actions_reject_bad_requests(sim: InProcessSim) -> None:
    device = reader(sim)
    assert "visa" in device.act("list_cards", {})
    with pytest.raises(SimError, match="gate is closed"):
        device.act("insert", {"card": "visa"})
    device.insertion_enabled = True
    with pytest.raises(SimError, match="no sample card"):
        device.act("insert", {"card": "amex"})
    with pytest.raises(SimError, match="no card at the gate"):
        device.act("take", {})
    with pytest.raises(SimError, match="no action"):
        device.act("shake", {})


def options(**table: Any) -> CardReaderOptions:
    reader = SectionReader(Path("/etc/agent.toml"), "device.card_reader", table)
    result = Crt591CardReaderDriver.read_options(reader)
    reader.finish()
    return result


def test_options_are_strict() -> None:
    good = options(port="/dev/ttyS0", baudrate=38400, command_timeout=40)
    assert (good.baudrate, good.take_timeout, good.nak_retries) == (38400, 20.0, 3)
    with pytest.raises(ConfigError, match="baudrate"):
        options(port="/dev/ttyS0", baudrate=1200, command_timeout=40)
    # The defaults fit together: a 20 s take timeout inside the 30 s command timeout.
    assert options(port="/dev/ttyS0").take_timeout == 20
    with pytest.raises(ConfigError, match="take_timeout.*command_timeout"):
        options(port="/dev/ttyS0", take_timeout=30)
    with pytest.raises(ConfigError, match="address"):
        options(port="/dev/ttyS0", address=16, take_timeout=10)
    with pytest.raises(ConfigError, match="unknown option"):
        options(port="/dev/ttyS0", take_timeout=10, speed=9600)
