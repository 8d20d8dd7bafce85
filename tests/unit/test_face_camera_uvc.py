"""The V4L2 (UVC) face camera path without a camera.

This sandbox has no /dev/video* and no kernel modules (``vivid`` cannot be loaded), so the
V4L2 path is tested two ways: the ioctl request numbers and structure layouts against the
values of linux/videodev2.h on 64-bit Linux (as the kernel computes them), and the driver
against a fake kernel that answers each ioctl the way the V4L2 API specifies, on those same
ctypes structures. Nothing here ran against a real device.
"""

from __future__ import annotations

import ctypes
import errno
from pathlib import Path
from typing import Any

import pytest

from branchline.drivers.base import CancelToken, Completion, DeviceError, DeviceGone, DriverContext
from branchline.drivers.face_camera import v4l2
from branchline.drivers.face_camera.uvc import KernelOps, UvcOptions, V4l2FaceCameraDriver
from branchline.server.faces.checks import capture_from_result, refuse_capture
from branchline.server.faces.settings import FaceSettings

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "faces"


def test_ioctl_numbers_are_the_kernel_headers() -> None:
    # linux/videodev2.h on x86-64 / arm64, as _IOR/_IOWR('V', nr, struct) evaluate there.
    assert v4l2.VIDIOC_QUERYCAP == 0x80685600
    assert v4l2.VIDIOC_S_FMT == 0xC0D05605
    assert v4l2.VIDIOC_REQBUFS == 0xC0145608
    assert v4l2.VIDIOC_QUERYBUF == 0xC0585609
    assert v4l2.VIDIOC_QBUF == 0xC058560F
    assert v4l2.VIDIOC_DQBUF == 0xC0585611
    assert v4l2.VIDIOC_STREAMON == 0x40045612
    assert v4l2.VIDIOC_STREAMOFF == 0x40045613
    assert v4l2.V4L2_PIX_FMT_MJPEG == 0x47504A4D  # v4l2_fourcc('M', 'J', 'P', 'G')


def test_structure_layouts_match_the_kernel() -> None:
    assert ctypes.sizeof(v4l2.Capability) == 104
    assert v4l2.Capability.capabilities.offset == 84
    assert ctypes.sizeof(v4l2.Format) == 208 and v4l2.Format.fmt.offset == 8
    assert ctypes.sizeof(v4l2.PixFormat) == 48
    assert ctypes.sizeof(v4l2.RequestBuffers) == 20
    assert ctypes.sizeof(v4l2.Buffer) == 88
    assert v4l2.Buffer.timestamp.offset == 24 and v4l2.Buffer.sequence.offset == 56
    assert v4l2.Buffer.m.offset == 64 and v4l2.Buffer.length.offset == 72


class FakeKernel:
    """One UVC camera as the V4L2 API describes it: mmap buffers, a queue, frames."""

    def __init__(self, frames: list[bytes], caps: int | None = None) -> None:
        self.frames = list(frames)
        self.caps = (
            caps if caps is not None else (v4l2.V4L2_CAP_VIDEO_CAPTURE | v4l2.V4L2_CAP_STREAMING)
        )
        self.buffers: list[bytearray] = []
        self.queued: list[int] = []
        self.filled: list[tuple[int, int]] = []  # (index, bytesused) ready to dequeue
        self.streaming = False
        self.calls: list[str] = []
        self.gone = False

    def ops(self) -> KernelOps:
        return KernelOps(
            open=lambda path: 7,
            close=lambda fd: None,
            ioctl=self.ioctl,
            map=lambda fd, length, offset: self.buffers[offset // 4096],
            readable=self.readable,
        )

    def readable(self, fd: int, timeout: float) -> bool:
        # A new frame arrives while someone waits (timeout > 0); a poll only sees what is ready.
        if timeout > 0 and not self.filled and self.streaming and self.frames and self.queued:
            index = self.queued.pop(0)
            frame = self.frames.pop(0)
            self.buffers[index][: len(frame)] = frame
            self.filled.append((index, len(frame)))
        return bool(self.filled)

    def ioctl(self, fd: int, request: int, arg: Any) -> None:
        self.calls.append(v4l2.IOCTL_NAMES[request])
        if self.gone:
            raise OSError(errno.ENODEV, "No such device")
        if request == v4l2.VIDIOC_QUERYCAP:
            arg.driver, arg.card = b"uvcvideo", b"Kiosk HD Webcam"
            arg.capabilities = self.caps | v4l2.V4L2_CAP_DEVICE_CAPS
            arg.device_caps = self.caps
        elif request == v4l2.VIDIOC_S_FMT:
            assert arg.type == v4l2.V4L2_BUF_TYPE_VIDEO_CAPTURE
            arg.fmt.pix.width, arg.fmt.pix.height = 640, 480  # the nearest size it has
        elif request == v4l2.VIDIOC_REQBUFS:
            assert arg.memory == v4l2.V4L2_MEMORY_MMAP
            self.buffers = [bytearray(200_000) for _ in range(arg.count)]
        elif request == v4l2.VIDIOC_QUERYBUF:
            arg.length, arg.m.offset = 200_000, arg.index * 4096
        elif request == v4l2.VIDIOC_QBUF:
            self.queued.append(arg.index)
        elif request == v4l2.VIDIOC_DQBUF:
            if not self.filled:
                raise OSError(errno.EAGAIN, "Resource temporarily unavailable")
            arg.index, arg.bytesused = self.filled.pop(0)
        elif request == v4l2.VIDIOC_STREAMON:
            self.streaming = True
        elif request == v4l2.VIDIOC_STREAMOFF:
            self.streaming = False


OPTIONS = UvcOptions(port="/dev/video0", width=1280, height=720, frame_timeout=0.5)


def camera(kernel: FakeKernel) -> V4l2FaceCameraDriver:
    driver = V4l2FaceCameraDriver(DriverContext("T", "B", "face_camera"), OPTIONS, kernel.ops())
    driver.open()
    return driver


def test_open_negotiates_mjpeg_and_streams() -> None:
    kernel = FakeKernel([])
    driver = camera(kernel)
    assert kernel.calls == [
        "VIDIOC_QUERYCAP",
        "VIDIOC_S_FMT",
        "VIDIOC_REQBUFS",
        *["VIDIOC_QUERYBUF", "VIDIOC_QBUF"] * 2,
        "VIDIOC_STREAMON",
    ]
    assert driver.size == (640, 480) and driver.card == "Kiosk HD Webcam"
    driver.close()
    assert kernel.calls[-1] == "VIDIOC_STREAMOFF" and not kernel.streaming


def test_a_capture_is_a_jpeg_without_liveness_and_the_server_refuses_it() -> None:
    photo = (FIXTURES / "obama_1.jpg").read_bytes()
    kernel = FakeKernel([photo])
    result = camera(kernel).capture({"timeout_s": 1}, CancelToken())
    assert result["liveness"] == "unavailable" and result["face_count"] is None
    assert result["image_bytes"] == len(photo) and (result["width"], result["height"]) == (640, 480)
    refusal = refuse_capture(capture_from_result(result), FaceSettings())
    assert refusal is not None and refusal.reason == "liveness_unavailable"


def test_no_frame_times_out_and_a_non_jpeg_is_named() -> None:
    error = pytest.raises(
        DeviceError, camera(FakeKernel([])).capture, {"timeout_s": 0.2}, CancelToken()
    )
    assert (error.value.completion, error.value.code) == (Completion.TIMEOUT, "capture_timeout")
    error = pytest.raises(
        DeviceError, camera(FakeKernel([b"YUYV" * 10])).capture, {}, CancelToken()
    )
    assert error.value.code == "bad_frame" and "not a JPEG" in error.value.message


def test_a_device_without_streaming_capture_is_refused_and_a_vanished_one_is_gone() -> None:
    kernel = FakeKernel([], caps=v4l2.V4L2_CAP_VIDEO_CAPTURE)
    with pytest.raises(DeviceError) as refused:
        camera(kernel)
    assert refused.value.code == "not_a_camera" and "cannot stream" in refused.value.message
    kernel = FakeKernel([b"\xff\xd8x"])
    driver = camera(kernel)
    kernel.gone = True
    with pytest.raises(DeviceGone, match="VIDIOC_DQBUF failed: the camera is gone"):
        driver.capture({}, CancelToken())


def test_frames_that_queued_up_unseen_are_dropped_as_stale() -> None:
    old, new = b"\xff\xd8old frame", b"\xff\xd8new"
    kernel = FakeKernel([old, new])
    driver = camera(kernel)
    assert kernel.readable(7, 0.1)  # a frame completed while nobody asked
    result = driver.capture({"timeout_s": 1}, CancelToken())
    assert result["image_bytes"] == len(new) and kernel.queued  # buffers went back
