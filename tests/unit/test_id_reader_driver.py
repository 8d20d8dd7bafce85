"""The ID-card reader driver against the simulated reader, wired back to back in memory."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from branchline.common.config_reader import ConfigError, SectionReader
from branchline.drivers.base import (
    CancelToken,
    CommandCanceled,
    Completion,
    DeviceError,
    DeviceStatus,
    DriverContext,
)
from branchline.drivers.id_reader.driver import Ga467IdReaderDriver, mask_id_number
from branchline.drivers.id_reader.options import IdReaderOptions
from branchline.sim.devices.id_reader import SimulatedIdReader
from branchline.sim.id_cards import SAMPLE_CARDS
from tests.unit.loopback import Loopback, wire

VALID_ID = "11010519491231002X"


OPTIONS = IdReaderOptions(
    port="loop", baudrate=115200, status_timeout=0.2, reply_timeout=0.5, find_interval=0.02
)


@pytest.fixture
def device(tmp_path: Path) -> SimulatedIdReader:
    return SimulatedIdReader(tmp_path)


@pytest.fixture
def line(device: SimulatedIdReader, monkeypatch: pytest.MonkeyPatch) -> Loopback:
    return wire(device, monkeypatch)


@pytest.fixture
def reader(line: Loopback) -> Ga467IdReaderDriver:
    driver = Ga467IdReaderDriver(DriverContext("T-1", "BR-1", "id_reader"), OPTIONS)
    seen: list[tuple[str, bytes]] = []
    driver.tap = lambda direction, data: seen.append((direction, data))
    driver.open()
    return driver


def run(reader: Ga467IdReaderDriver, command: str, **params: Any) -> dict[str, Any]:
    result: dict[str, Any] = reader.commands()[command](params, CancelToken())
    return result


def failure(reader: Ga467IdReaderDriver, command: str, **params: Any) -> DeviceError:
    with pytest.raises(DeviceError) as failed:
        run(reader, command, **params)
    return failed.value


def test_valid_card_is_read_parsed_and_validated(
    reader: Ga467IdReaderDriver, device: SimulatedIdReader
) -> None:
    device.act("place", {"card": "valid"})
    result = run(reader, "read_card")
    assert result["name"] == "李秀英"
    assert result["sex"] == "female" and result["ethnicity"] == "Han"
    assert result["birth_date"] == "19491231"
    assert result["address"] == "北京市朝阳区建国路88号"
    assert result["id_number"] == VALID_ID
    assert result["id_number_masked"] == "110105********002X"
    assert result["issuing_authority"] == "北京市公安局朝阳分局"
    assert (result["valid_from"], result["valid_to"]) == ("20200601", "20400601")
    assert result["photo_bytes"] == 1024
    photo = SAMPLE_CARDS["valid"].card.photo
    assert result["photo_sha256"] == hashlib.sha256(photo).hexdigest()
    assert result["problems"] == [] and result["valid"] is True
    json.dumps(result)  # what the agent sends back must be plain JSON
    # A read halts the card; the driver finds and selects it again for the next read.
    assert run(reader, "read_card")["id_number"] == VALID_ID
    assert device.reads == 2


@pytest.mark.parametrize(
    ("card", "problems", "valid_to"),
    [
        ("expired", ["expired"], "20200315"),
        ("bad_check_digit", ["bad_check_digit"], "20380720"),
        ("long_term", [], "长期"),
    ],
)
def test_card_problems_are_listed_not_raised(
    reader: Ga467IdReaderDriver,
    device: SimulatedIdReader,
    card: str,
    problems: list[str],
    valid_to: str,
) -> None:
    device.act("place", {"card": card})
    result = run(reader, "read_card")
    assert result["problems"] == problems
    assert result["valid"] is (not problems)
    assert result["valid_to"] == valid_to


def test_no_card_times_out(reader: Ga467IdReaderDriver, device: SimulatedIdReader) -> None:
    started = time.monotonic()
    error = failure(reader, "read_card", timeout_s=0.3)
    assert 0.3 <= time.monotonic() - started < 1.5
    assert (error.completion, error.code) == (Completion.TIMEOUT, "no_card")
    assert device.requests > 3  # it kept looking


def test_card_placed_while_waiting_is_read(
    reader: Ga467IdReaderDriver, device: SimulatedIdReader
) -> None:
    threading.Timer(0.2, device.act, args=("place", {"card": "long_term"})).start()
    assert run(reader, "read_card", timeout_s=5)["name"] == "赵桂兰"


def test_cancel_while_waiting_for_a_card(reader: Ga467IdReaderDriver) -> None:
    cancel = CancelToken()
    threading.Timer(0.15, cancel.cancel, args=("customer left",)).start()
    started = time.monotonic()
    with pytest.raises(CommandCanceled):
        reader.read_card({"timeout_s": 10}, cancel)
    assert time.monotonic() - started < 1.0


def test_test_read_shows_only_masked_data(
    reader: Ga467IdReaderDriver, device: SimulatedIdReader
) -> None:
    device.act("place", {"card": "valid"})
    result = run(reader, "test_read")
    assert result["id_number_masked"] == "110105********002X"
    assert result["name_masked"] == "李**"
    assert "id_number" not in result and "name" not in result and "address" not in result
    text = json.dumps(result, ensure_ascii=False)
    assert VALID_ID not in text and "李秀英" not in text and "19491231" not in text


def test_sam_status_poll_and_self_test(reader: Ga467IdReaderDriver) -> None:
    assert run(reader, "sam_status") == {"sam": "ok", "sw3": "0x90"}
    report = reader.poll()
    assert report.status is DeviceStatus.ONLINE and report.facts["sam"] == "ok"
    assert reader.self_test(CancelToken()).ok
    assert reader.capabilities()["photo"] == "true"


def test_sam_fault_is_a_hardware_error_and_recovers(
    reader: Ga467IdReaderDriver, device: SimulatedIdReader
) -> None:
    device.act("place", {"card": "valid"})
    device.set_fault("sam_fault", True)
    report = reader.poll()
    assert report.status is DeviceStatus.HARDWARE_ERROR
    assert "SAM self-test failed" in report.detail
    error = failure(reader, "sam_status")
    assert (error.completion, error.code) == (Completion.HARDWARE_ERROR, "sam_self_test_failed")
    error = failure(reader, "read_card", timeout_s=1)
    assert error.code == "sam_self_test_failed"
    device.set_fault("sam_fault", False)
    assert reader.poll().status is DeviceStatus.ONLINE
    assert run(reader, "read_card")["valid"] is True


def test_read_fail_is_a_user_error(reader: Ga467IdReaderDriver, device: SimulatedIdReader) -> None:
    device.act("place", {"card": "valid"})
    device.set_fault("read_fail", True)
    error = failure(reader, "read_card", timeout_s=1)
    assert (error.completion, error.code) == (Completion.USER_ERROR, "read_failed")
    assert "0x41" in error.message
    device.set_fault("read_fail", False)
    assert run(reader, "read_card")["valid"] is True


def test_one_bad_checksum_is_retried(
    reader: Ga467IdReaderDriver, device: SimulatedIdReader
) -> None:
    device.act("place", {"card": "valid"})
    device.set_fault("bad_checksum", True)
    assert run(reader, "read_card")["valid"] is True
    assert device.corrupted == 1 and "bad_checksum" not in device.faults_active


def test_silent_reader_is_offline(reader: Ga467IdReaderDriver, line: Loopback) -> None:
    line.silent = True
    report = reader.poll()
    assert report.status is DeviceStatus.OFFLINE
    assert "no reply to SAM status" in report.detail


def test_bad_params_are_named(reader: Ga467IdReaderDriver) -> None:
    assert "timeout_s: expected a number" in failure(reader, "read_card", timeout_s="x").message
    assert "timeout_s: must be above 0" in failure(reader, "read_card", timeout_s=-1).message
    error = failure(reader, "read_card", colour="red")
    assert (error.completion, error.code) == (Completion.INVALID_DATA, "invalid_parameter")
    assert "colour: unknown parameter" in error.message
    assert "x: unknown parameter" in failure(reader, "sam_status", x=1).message


def test_masking() -> None:
    assert mask_id_number(VALID_ID) == "110105********002X"
    assert mask_id_number("123") == "***"


def _reader(table: dict[str, Any], tmp_path: Path) -> SectionReader:
    return SectionReader(tmp_path / "agent.toml", "device.id_reader", table)


def test_options_defaults_and_errors(tmp_path: Path) -> None:
    section = _reader({"port": "dev/id"}, tmp_path)
    options = Ga467IdReaderDriver.read_options(section)
    section.finish()
    assert options.baudrate == 115200
    assert options.port == str(tmp_path / "dev" / "id")
    assert options.reply_timeout == 3.0 and options.status_timeout == 0.5
    with pytest.raises(ConfigError, match=r"baudrate: must be one of"):
        Ga467IdReaderDriver.read_options(_reader({"port": "x", "baudrate": 1200}, tmp_path))
    with pytest.raises(ConfigError, match=r"reply_timeout: expected a number"):
        Ga467IdReaderDriver.read_options(_reader({"port": "x", "reply_timeout": "1"}, tmp_path))
    section = _reader({"port": "x", "speed": 9600}, tmp_path)
    Ga467IdReaderDriver.read_options(section)
    with pytest.raises(ConfigError, match=r"speed: unknown option"):
        section.finish()
