"""Face camera driver for a plain UVC camera through V4L2 (``/dev/videoN``), MJPEG frames.

A UVC camera has no infrared channel and no face detector: every capture reports liveness
``unavailable`` and no face count or pose (``None``), so the server refuses face
verification from it by name (``liveness_unavailable``). It is still useful for enrolment
photos and a technician's check.

Options: ``port`` (the video node, ``/dev/videoN``), ``width`` / ``height`` (asked for; the camera may pick
the nearest size it has), ``frame_timeout``. Commands: ``capture {timeout_s}``,
``test_capture {timeout_s}``, as the face module's (drivers/face_camera/driver.py).

The streaming I/O is the standard mmap sequence: QUERYCAP (must capture and stream), S_FMT
MJPEG, REQBUFS, QUERYBUF + mmap, QBUF all, STREAMON; a capture drops the frames that queued
up while nobody looked (stale) and returns the next one.
"""

from __future__ import annotations

import base64
import ctypes
import errno
import fcntl
import hashlib
import mmap
import os
import select
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from branchline.common.config_reader import SectionReader
from branchline.drivers.base import (
    CancelToken,
    Completion,
    DeviceError,
    DeviceGone,
    DeviceStatus,
    Driver,
    DriverContext,
    SelfTestResult,
    StatusReport,
)
from branchline.drivers.face_camera import v4l2
from branchline.drivers.face_camera.capture import JPEG_SOI
from branchline.drivers.face_camera.driver import CAPTURE_TIMEOUT_S, check_params, timeout_param

BUFFERS = 2
SLICE = 0.1  # longest wait for a frame: a cancel is noticed within this


@dataclass(frozen=True)
class UvcOptions:
    port: str  # the video node
    width: int
    height: int
    frame_timeout: float  # seconds a streaming camera may take for one frame


def read_uvc_options(reader: SectionReader) -> UvcOptions:
    return UvcOptions(
        port=str(reader.get_path("port")),
        width=reader.get_int("width", 1280, minval=160, maxval=4096),
        height=reader.get_int("height", 720, minval=120, maxval=4096),
        frame_timeout=reader.get_float("frame_timeout", 2.0, above=0.0, maxval=30.0),
    )


@dataclass
class KernelOps:
    """The system calls the driver makes; tests give it a fake kernel."""

    open: Callable[[str], int] = lambda path: os.open(path, os.O_RDWR | os.O_NONBLOCK)
    close: Callable[[int], None] = os.close
    ioctl: Callable[[int, int, Any], Any] = lambda fd, req, arg: fcntl.ioctl(fd, req, arg, True)
    map: Callable[[int, int, int], Any] = lambda fd, length, offset: mmap.mmap(
        fd, length, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=offset
    )
    readable: Callable[[int, float], bool] = lambda fd, timeout: bool(
        select.select([fd], [], [], timeout)[0]
    )


def _failed(call: int, exc: OSError) -> DeviceError:
    name = v4l2.IOCTL_NAMES.get(call, hex(call))
    if exc.errno in (errno.ENODEV, errno.ENXIO, errno.EIO):
        return DeviceGone(f"face camera: {name} failed: the camera is gone ({exc.strerror})")
    return DeviceError(
        Completion.HARDWARE_ERROR, "v4l2_error", f"face camera: {name} failed: {exc.strerror}"
    )


class V4l2FaceCameraDriver(Driver):
    device_class = "face_camera"

    def __init__(
        self, context: DriverContext, options: UvcOptions, ops: KernelOps | None = None
    ) -> None:
        super().__init__(context, options)
        self.options = options
        self.ops = ops or KernelOps()
        self._fd: int | None = None
        self._maps: list[Any] = []
        self.card = ""
        self.size = (0, 0)

    @classmethod
    def read_options(cls, reader: SectionReader) -> UvcOptions:
        return read_uvc_options(reader)

    def _ioctl(self, call: int, arg: Any) -> None:
        if self._fd is None:
            raise DeviceGone("face camera is not open")
        try:
            self.ops.ioctl(self._fd, call, arg)
        except OSError as exc:
            raise _failed(call, exc) from None

    def open(self) -> None:
        try:
            self._fd = self.ops.open(self.options.port)
        except OSError as exc:
            raise DeviceGone(
                f"face camera: cannot open {self.options.port}: {exc.strerror}"
            ) from None
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    def _start(self) -> None:
        cap = v4l2.Capability()
        self._ioctl(v4l2.VIDIOC_QUERYCAP, cap)
        self.card = cap.card.decode("utf-8", "replace")
        wanted = v4l2.V4L2_CAP_VIDEO_CAPTURE | v4l2.V4L2_CAP_STREAMING
        if cap.caps() & wanted != wanted:
            raise DeviceError(
                Completion.UNSUPPORTED,
                "not_a_camera",
                f"face camera: {self.options.port} ({self.card}) cannot stream video capture",
            )
        fmt = v4l2.mjpeg_format(self.options.width, self.options.height)
        self._ioctl(v4l2.VIDIOC_S_FMT, fmt)
        if fmt.fmt.pix.pixelformat not in (v4l2.V4L2_PIX_FMT_MJPEG, v4l2.V4L2_PIX_FMT_JPEG):
            raise DeviceError(
                Completion.UNSUPPORTED, "no_mjpeg", f"face camera: {self.card} offers no MJPEG"
            )
        self.size = (int(fmt.fmt.pix.width), int(fmt.fmt.pix.height))
        req = v4l2.RequestBuffers(
            count=BUFFERS, type=v4l2.V4L2_BUF_TYPE_VIDEO_CAPTURE, memory=v4l2.V4L2_MEMORY_MMAP
        )
        self._ioctl(v4l2.VIDIOC_REQBUFS, req)
        for index in range(req.count):
            buf = v4l2.capture_buffer(index)
            self._ioctl(v4l2.VIDIOC_QUERYBUF, buf)
            assert self._fd is not None
            self._maps.append(self.ops.map(self._fd, buf.length, buf.m.offset))
            self._ioctl(v4l2.VIDIOC_QBUF, buf)
        self._ioctl(v4l2.VIDIOC_STREAMON, ctypes.c_int(v4l2.V4L2_BUF_TYPE_VIDEO_CAPTURE))

    def close(self) -> None:
        if self._fd is None:
            return
        try:
            self.ops.ioctl(self._fd, v4l2.VIDIOC_STREAMOFF, ctypes.c_int(1))
        except OSError:
            pass
        for mapped in self._maps:
            if hasattr(mapped, "close"):
                mapped.close()
        self._maps.clear()
        try:
            self.ops.close(self._fd)
        except OSError:
            pass
        self._fd = None

    def _dequeue(self, timeout: float, cancel: CancelToken) -> bytes | None:
        """The next frame's bytes (the buffer is queued again), or None at the deadline."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            cancel.raise_if_canceled()
            assert self._fd is not None
            if not self.ops.readable(self._fd, min(SLICE, remaining)):
                continue
            buf = v4l2.capture_buffer()
            self._ioctl(v4l2.VIDIOC_DQBUF, buf)
            frame = bytes(self._maps[buf.index][: buf.bytesused])
            self._ioctl(v4l2.VIDIOC_QBUF, buf)
            return frame
        return None

    def capture_frame(self, timeout_s: float, cancel: CancelToken) -> bytes:
        if self._fd is None:
            raise DeviceGone("face camera is not open")
        # Frames queued while nobody looked are old: drop what is ready now.
        for _ in range(BUFFERS):
            assert self._fd is not None
            if not self.ops.readable(self._fd, 0):
                break
            self._dequeue(0.001, cancel)
        frame = self._dequeue(timeout_s, cancel)
        if frame is None:
            raise DeviceError(
                Completion.TIMEOUT, "capture_timeout", f"face camera: no frame in {timeout_s:g} s"
            )
        if not frame.startswith(JPEG_SOI):
            raise DeviceError(
                Completion.INVALID_DATA, "bad_frame", "face camera: the frame is not a JPEG"
            )
        return frame

    def _facts(self, frame: bytes) -> dict[str, Any]:
        return {
            "liveness": "unavailable",
            "liveness_score": None,
            "face_count": None,  # a UVC camera does not detect faces
            "sharpness": None,
            "yaw_deg": None,
            "pitch_deg": None,
            "roll_deg": None,
            "width": self.size[0],
            "height": self.size[1],
            "image_bytes": len(frame),
            "image_sha256": hashlib.sha256(frame).hexdigest(),
        }

    def capture(self, params: dict[str, Any], cancel: CancelToken) -> dict[str, Any]:
        frame = self.capture_frame(timeout_param(params, CAPTURE_TIMEOUT_S), cancel)
        return {**self._facts(frame), "jpeg_b64": base64.b64encode(frame).decode("ascii")}

    def test_capture(self, params: dict[str, Any], cancel: CancelToken) -> dict[str, Any]:
        return self._facts(self.capture_frame(timeout_param(params, CAPTURE_TIMEOUT_S), cancel))

    def commands(self) -> dict[str, Any]:
        return {"capture": self.capture, "test_capture": self.test_capture}

    def poll(self) -> StatusReport:
        if self._fd is None:
            raise DeviceGone("face camera is not open")
        if not os.path.exists(self.options.port):
            raise DeviceGone(f"face camera: {self.options.port} is gone")
        return StatusReport(DeviceStatus.ONLINE, "", {"liveness": "unavailable"})

    def capabilities(self) -> dict[str, str]:
        return {"transport": "v4l2", "protocol": "uvc_mjpeg", "liveness": "none"}

    def self_test(self, cancel: CancelToken) -> SelfTestResult:
        check_params({}, ())
        frame = self.capture_frame(self.options.frame_timeout, cancel)
        return SelfTestResult(
            True, f"{self.card}: one {self.size[0]}x{self.size[1]} MJPEG frame, {len(frame)} bytes"
        )
