"""Face camera driver for a dual visible/infrared kiosk face module (Branchline face-module
command set over serial: docs/protocols/face-camera.md).

Commands:

- ``capture {timeout_s=5}``: one capture: the JPEG (base64), its size and SHA-256, the
  module's liveness (``live`` / ``not_live`` / ``unavailable``) with its score, and quality
  (face count, sharpness, pose). The driver does not judge: the server's face checks refuse a
  bad capture by name (``branchline.server.faces``).
- ``test_capture {timeout_s=5}``: the technician's capture: the same facts, no image.
- ``module_status``: the module's own status flags and capture count.

Status comes from STATUS: no answer is offline; a visible-sensor fault is a hardware error;
an infrared fault alone leaves the camera online with ``liveness: unavailable`` in its facts
(captures still work, the sale refuses face verification without liveness).
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from branchline.common.config_reader import SectionReader
from branchline.drivers import params as params_check
from branchline.drivers.base import (
    CancelToken,
    Completion,
    DeviceError,
    DeviceGone,
    DeviceStatus,
    SelfTestResult,
    StatusReport,
)
from branchline.drivers.face_camera.capture import (
    MAX_TIMEOUT_MS,
    Capture,
    ModuleStatus,
    decode_capture,
    decode_status,
    decode_texts,
    encode_capture_request,
)
from branchline.drivers.face_camera.frames import Command, Malformed
from branchline.drivers.face_camera.link import FaceModuleLink, NoReply, describe
from branchline.drivers.face_camera.options import FaceModuleOptions, read_face_module_options
from branchline.drivers.serial_link import SerialLinkDriver, status_failure
from branchline.drivers.transport import Transport

CAPTURE_TIMEOUT_S = 5.0


def check_params(params: dict[str, Any], allowed: tuple[str, ...]) -> None:
    params_check.only(params, allowed)


def timeout_param(params: dict[str, Any], default: float) -> float:
    params_check.only(params, ("timeout_s",))
    value = params_check.seconds(params, "timeout_s", default, maximum=MAX_TIMEOUT_MS / 1000)
    if value < 0.1:
        raise params_check.bad_parameter(
            f"timeout_s: must be 0.1 to {MAX_TIMEOUT_MS / 1000:g}, got {value:g}"
        )
    return value


def capture_facts(capture: Capture) -> dict[str, Any]:
    """Everything about a capture but the image itself."""
    q = capture.quality
    return {
        "liveness": capture.liveness.value,
        "liveness_score": capture.liveness_score,
        "face_count": q.face_count,
        "sharpness": q.sharpness,
        "yaw_deg": q.yaw_deg,
        "pitch_deg": q.pitch_deg,
        "roll_deg": q.roll_deg,
        "width": capture.width,
        "height": capture.height,
        "image_bytes": len(capture.jpeg),
        "image_sha256": hashlib.sha256(capture.jpeg).hexdigest(),
    }


def capture_result(capture: Capture) -> dict[str, Any]:
    return {**capture_facts(capture), "jpeg_b64": base64.b64encode(capture.jpeg).decode("ascii")}


class FaceModuleDriver(SerialLinkDriver[FaceModuleLink]):
    device_class = "face_camera"
    device_name = "face camera"
    options: FaceModuleOptions

    @classmethod
    def read_options(cls, reader: SectionReader) -> FaceModuleOptions:
        return read_face_module_options(reader)

    def make_link(self, transport: Transport) -> FaceModuleLink:
        return FaceModuleLink(transport)

    def module_status(self, cancel: CancelToken | None = None) -> ModuleStatus:
        payload = self._line().exchange(Command.STATUS, b"", self.options.status_timeout, cancel)
        status = decode_status(payload)
        if isinstance(status, Malformed):
            raise self._bad_reply(Command.STATUS, status)
        return status

    @staticmethod
    def _bad_reply(command: Command, problem: Malformed) -> DeviceError:
        return DeviceError(
            Completion.INVALID_DATA,
            "bad_reply",
            f"face camera: {describe(command)} reply: {problem.reason}",
        )

    def poll(self) -> StatusReport:
        try:
            status = self.module_status()
        except DeviceGone:
            raise
        except DeviceError as exc:
            return status_failure(exc, "module", NoReply)
        liveness = "unavailable" if status.ir_fault else "available"
        if status.sensor_fault:
            return StatusReport(
                DeviceStatus.HARDWARE_ERROR,
                "face camera: visible sensor fault",
                {"module": "sensor_fault", "liveness": liveness},
            )
        detail = "infrared channel failed: no liveness" if status.ir_fault else ""
        return StatusReport(DeviceStatus.ONLINE, detail, {"module": "ok", "liveness": liveness})

    def capabilities(self) -> dict[str, str]:
        return {
            "transport": "serial",
            "protocol": "branchline_face_module",
            "liveness": "infrared",
            "quality": "true",
        }

    def capture_image(self, timeout_s: float, cancel: CancelToken) -> Capture:
        """One capture; the module gets ``timeout_s`` to find a usable frame."""
        payload = self._line().exchange(
            Command.CAPTURE,
            encode_capture_request(round(timeout_s * 1000)),
            timeout_s + self.options.transfer_timeout,
            cancel,
        )
        capture = decode_capture(payload)
        if isinstance(capture, Malformed):
            raise self._bad_reply(Command.CAPTURE, capture)
        return capture

    def capture(self, params: dict[str, Any], cancel: CancelToken) -> dict[str, Any]:
        return capture_result(self.capture_image(timeout_param(params, CAPTURE_TIMEOUT_S), cancel))

    def test_capture(self, params: dict[str, Any], cancel: CancelToken) -> dict[str, Any]:
        return capture_facts(self.capture_image(timeout_param(params, CAPTURE_TIMEOUT_S), cancel))

    def status_command(self, params: dict[str, Any], cancel: CancelToken) -> dict[str, Any]:
        check_params(params, ())
        status = self.module_status(cancel)
        return {
            "sensor": "fault" if status.sensor_fault else "ok",
            "infrared": "fault" if status.ir_fault else "ok",
            "captures": status.captures,
        }

    def commands(self) -> dict[str, Any]:
        return {
            "capture": self.capture,
            "test_capture": self.test_capture,
            "module_status": self.status_command,
        }

    def self_test(self, cancel: CancelToken) -> SelfTestResult:
        # A failed self-test is a result code: the link raises it with its completion.
        payload = self._line().exchange(Command.SELF_TEST, b"", self.options.status_timeout, cancel)
        texts = decode_texts(payload, 1)
        if isinstance(texts, Malformed):
            raise self._bad_reply(Command.SELF_TEST, texts)
        return SelfTestResult(True, f"face module self-test passed: {texts[0]}")
