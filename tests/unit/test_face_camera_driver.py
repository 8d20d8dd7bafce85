"""The face-module driver against the simulated module, back to back in memory: every
presentation (live face, printed photo, no face, two faces), faults and bad parameters.
The same pair over a real pseudo-terminal is in tests/integration/test_face_camera.py."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from branchline.drivers.base import (
    CancelToken,
    Completion,
    DeviceError,
    DeviceStatus,
    DriverContext,
)
from branchline.drivers.face_camera.driver import FaceModuleDriver
from branchline.drivers.face_camera.options import FaceModuleOptions
from branchline.sim.devices.base import SimError
from branchline.sim.devices.face_camera import SimulatedFaceCamera
from tests.unit.loopback import Loopback, wire

OPTIONS = FaceModuleOptions(port="loop", baudrate=921600, status_timeout=0.2, transfer_timeout=0.5)


@pytest.fixture
def device(tmp_path: Path) -> SimulatedFaceCamera:
    return SimulatedFaceCamera(tmp_path)


@pytest.fixture
def line(device: SimulatedFaceCamera, monkeypatch: pytest.MonkeyPatch) -> Loopback:
    return wire(device, monkeypatch)


@pytest.fixture
def camera(line: Loopback) -> FaceModuleDriver:
    driver = FaceModuleDriver(DriverContext("T-1", "BR-1", "face_camera"), OPTIONS)
    driver.open()
    return driver


def run(camera: FaceModuleDriver, command: str, **params: Any) -> dict[str, Any]:
    result: dict[str, Any] = camera.commands()[command](params, CancelToken())
    return result


def failure(camera: FaceModuleDriver, command: str, **params: Any) -> DeviceError:
    with pytest.raises(DeviceError) as failed:
        run(camera, command, **params)
    return failed.value


def image_of(result: dict[str, Any]) -> Image.Image:
    jpeg = base64.b64decode(result["jpeg_b64"])
    assert hashlib.sha256(jpeg).hexdigest() == result["image_sha256"]
    assert len(jpeg) == result["image_bytes"]
    return Image.open(io.BytesIO(jpeg))


def test_live_face_comes_with_liveness_and_quality(
    camera: FaceModuleDriver, device: SimulatedFaceCamera
) -> None:
    device.act("present", {"scene": "live", "person": "obama"})
    result = run(camera, "capture")
    json.dumps(result)  # what the agent sends on must be plain JSON
    assert result["liveness"] == "live" and result["liveness_score"] == 0.962
    assert result["face_count"] == 1 and result["yaw_deg"] == 0.0
    assert 0.2 < result["sharpness"] <= 1.0
    image = image_of(result)
    assert image.format == "JPEG" and image.size == (result["width"], result["height"])
    assert device.captures == 1


def test_printed_photo_is_captured_but_not_live(
    camera: FaceModuleDriver, device: SimulatedFaceCamera
) -> None:
    device.act("present", {"scene": "live", "person": "biden"})
    live = run(camera, "capture")
    device.act("present", {"scene": "photo", "person": "biden"})
    result = run(camera, "capture")
    assert result["liveness"] == "not_live" and result["liveness_score"] < 0.2
    assert result["face_count"] == 1
    assert result["image_sha256"] != live["image_sha256"]  # a print looks different


def test_no_face_and_two_faces_are_reported_by_count(
    camera: FaceModuleDriver, device: SimulatedFaceCamera
) -> None:
    device.act("present", {"scene": "no_face"})
    result = run(camera, "capture")
    assert result["face_count"] == 0 and result["liveness"] == "not_live"
    device.act("present", {"scene": "two_faces", "person": "obama", "other": "biden"})
    result = run(camera, "capture")
    assert result["face_count"] == 2
    assert result["width"] > result["height"]  # side by side
    image_of(result)


def test_test_capture_has_no_image(camera: FaceModuleDriver, device: SimulatedFaceCamera) -> None:
    device.act("present", {"scene": "live", "person": "obama", "index": "1", "yaw": "-12.5"})
    result = run(camera, "test_capture")
    assert "jpeg_b64" not in result and result["yaw_deg"] == -12.5
    assert result["image_bytes"] > 5000


def test_nothing_in_front_of_the_camera_times_out_by_name(camera: FaceModuleDriver) -> None:
    error = failure(camera, "capture", timeout_s=0.2)
    assert (error.completion, error.code) == (Completion.TIMEOUT, "capture_timeout")
    assert "capture (0x10)" in error.message


def test_bad_parameters_are_named(camera: FaceModuleDriver) -> None:
    assert "timeout_s: expected a number" in failure(camera, "capture", timeout_s="soon").message
    assert (
        "timeout_s: must be above 0 and at most 30, got 99"
        in failure(camera, "capture", timeout_s=99).message
    )
    assert "timeout_s: must be 0.1 to 30" in failure(camera, "capture", timeout_s=0.01).message
    assert "colour: unknown parameter" in failure(camera, "capture", colour=1).message
    assert failure(camera, "module_status", x=1).code == "invalid_parameter"


def test_status_poll_self_test_and_capabilities(camera: FaceModuleDriver) -> None:
    report = camera.poll()
    assert report.status is DeviceStatus.ONLINE and report.facts["liveness"] == "available"
    assert run(camera, "module_status") == {"sensor": "ok", "infrared": "ok", "captures": 0}
    result = camera.self_test(CancelToken())
    assert result.ok and "infrared 640x360 ok" in result.detail
    assert camera.capabilities()["liveness"] == "infrared"


def test_sensor_fault_is_a_hardware_error_and_recovers(
    camera: FaceModuleDriver, device: SimulatedFaceCamera
) -> None:
    device.act("present", {"scene": "live", "person": "obama"})
    device.set_fault("sensor_fault", True)
    report = camera.poll()
    assert report.status is DeviceStatus.HARDWARE_ERROR and report.facts["module"] == "sensor_fault"
    error = failure(camera, "capture")
    assert (error.completion, error.code) == (Completion.HARDWARE_ERROR, "sensor_fault")
    with pytest.raises(DeviceError) as failed:
        camera.self_test(CancelToken())
    assert failed.value.code == "sensor_fault"
    device.set_fault("sensor_fault", False)
    assert camera.poll().status is DeviceStatus.ONLINE
    assert run(camera, "capture")["liveness"] == "live"


def test_ir_fault_leaves_captures_without_liveness(
    camera: FaceModuleDriver, device: SimulatedFaceCamera
) -> None:
    device.act("present", {"scene": "photo", "person": "obama"})
    device.set_fault("ir_fault", True)
    report = camera.poll()
    assert report.status is DeviceStatus.ONLINE and report.facts["liveness"] == "unavailable"
    result = run(camera, "capture")
    assert result["liveness"] == "unavailable" and result["liveness_score"] is None
    with pytest.raises(DeviceError) as failed:
        camera.self_test(CancelToken())
    assert (failed.value.completion, failed.value.code) == (Completion.HARDWARE_ERROR, "ir_fault")


def test_one_damaged_reply_is_asked_again(
    camera: FaceModuleDriver, device: SimulatedFaceCamera
) -> None:
    device.act("present", {"scene": "live", "person": "obama"})
    device.set_fault("bad_crc", True)
    assert run(camera, "capture")["liveness"] == "live"
    assert device.corrupted == 1 and device.captures == 2


def test_silence_is_offline(camera: FaceModuleDriver, line: Loopback) -> None:
    line.silent = True
    report = camera.poll()
    assert report.status is DeviceStatus.OFFLINE and "no reply to status (0x01)" in report.detail


def test_cancel_is_noticed(camera: FaceModuleDriver, line: Loopback) -> None:
    line.silent = True
    cancel = CancelToken()
    threading.Timer(0.1, cancel.cancel).start()
    started = time.monotonic()
    with pytest.raises(DeviceError) as failed:
        camera.capture({"timeout_s": 10}, cancel)
    assert failed.value.completion is Completion.CANCELED
    assert time.monotonic() - started < 1.0


def test_simulator_refuses_bad_presentations_by_name(device: SimulatedFaceCamera) -> None:
    cases: list[tuple[str, dict[str, str], str]] = [
        ("present", {"scene": "mask"}, "scene: unknown scene 'mask'"),
        ("present", {"scene": "live"}, "person: required"),
        ("present", {"scene": "photo", "person": "nobody"}, "person: unknown person 'nobody'"),
        ("present", {"scene": "live", "person": "biden", "index": "3"}, "index: biden has"),
        ("present", {"scene": "live", "person": "obama", "yaw": "x"}, "yaw: not a number"),
        ("present", {"scene": "no_face", "colour": "red"}, "colour: unknown parameter"),
        ("wave", {}, "no action 'wave'"),
    ]
    for action, params, message in cases:
        with pytest.raises(SimError, match=message):
            device.act(action, params)
    with pytest.raises(SimError, match="no fault 'fog'"):
        device.set_fault("fog", True)
    assert device.act("list_people", {}) == {"obama": "3", "biden": "1"}
