"""The few V4L2 ioctls a still capture needs, as ctypes structures (linux/videodev2.h). Pure
encoding: the ioctl itself is done by whoever holds the file descriptor.

Why not ``linuxpy`` / ``v4l2py``: capturing one MJPEG frame needs eight ioctls; a hundred
lines of structures whose sizes and request numbers the tests pin to the kernel header's
values are easier to audit than a general video library, and add no dependency. Layouts are
for 64-bit Linux (x86-64, arm64), which is what kiosks run.
"""

from __future__ import annotations

import ctypes

# _IOC encoding (asm-generic/ioctl.h): dir(2) | size(14) | type(8) | nr(8).
_IOC_WRITE = 1
_IOC_READ = 2


def _ioc(direction: int, nr: int, size: int) -> int:
    return (direction << 30) | (size << 16) | (ord("V") << 8) | nr


def fourcc(code: str) -> int:
    a, b, c, d = code.encode("ascii")
    return a | (b << 8) | (c << 16) | (d << 24)


V4L2_BUF_TYPE_VIDEO_CAPTURE = 1
V4L2_MEMORY_MMAP = 1
V4L2_FIELD_ANY = 0
V4L2_CAP_VIDEO_CAPTURE = 0x00000001
V4L2_CAP_STREAMING = 0x04000000
V4L2_CAP_DEVICE_CAPS = 0x80000000
V4L2_PIX_FMT_MJPEG = fourcc("MJPG")
V4L2_PIX_FMT_JPEG = fourcc("JPEG")


class Capability(ctypes.Structure):
    _fields_ = [
        ("driver", ctypes.c_char * 16),
        ("card", ctypes.c_char * 32),
        ("bus_info", ctypes.c_char * 32),
        ("version", ctypes.c_uint32),
        ("capabilities", ctypes.c_uint32),
        ("device_caps", ctypes.c_uint32),
        ("reserved", ctypes.c_uint32 * 3),
    ]

    def caps(self) -> int:
        """The capabilities of this device node (device_caps when the driver fills it)."""
        if self.capabilities & V4L2_CAP_DEVICE_CAPS:
            return int(self.device_caps)
        return int(self.capabilities)


class PixFormat(ctypes.Structure):
    _fields_ = [
        ("width", ctypes.c_uint32),
        ("height", ctypes.c_uint32),
        ("pixelformat", ctypes.c_uint32),
        ("field", ctypes.c_uint32),
        ("bytesperline", ctypes.c_uint32),
        ("sizeimage", ctypes.c_uint32),
        ("colorspace", ctypes.c_uint32),
        ("priv", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("ycbcr_enc", ctypes.c_uint32),
        ("quantization", ctypes.c_uint32),
        ("xfer_func", ctypes.c_uint32),
    ]


class _FormatUnion(ctypes.Union):
    # v4l2_window holds pointers: the union is pointer-aligned, so fmt sits at offset 8.
    _fields_ = [("pix", PixFormat), ("raw_data", ctypes.c_uint8 * 200), ("_align", ctypes.c_void_p)]


class Format(ctypes.Structure):
    _fields_ = [("type", ctypes.c_uint32), ("fmt", _FormatUnion)]


class RequestBuffers(ctypes.Structure):
    _fields_ = [
        ("count", ctypes.c_uint32),
        ("type", ctypes.c_uint32),
        ("memory", ctypes.c_uint32),
        ("capabilities", ctypes.c_uint32),
        ("flags", ctypes.c_uint8),
        ("reserved", ctypes.c_uint8 * 3),
    ]


class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class _Timecode(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("frames", ctypes.c_uint8),
        ("seconds", ctypes.c_uint8),
        ("minutes", ctypes.c_uint8),
        ("hours", ctypes.c_uint8),
        ("userbits", ctypes.c_uint8 * 4),
    ]


class _BufferM(ctypes.Union):
    _fields_ = [
        ("offset", ctypes.c_uint32),
        ("userptr", ctypes.c_ulong),
        ("planes", ctypes.c_void_p),
        ("fd", ctypes.c_int32),
    ]


class Buffer(ctypes.Structure):
    _fields_ = [
        ("index", ctypes.c_uint32),
        ("type", ctypes.c_uint32),
        ("bytesused", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("field", ctypes.c_uint32),
        ("timestamp", _Timeval),
        ("timecode", _Timecode),
        ("sequence", ctypes.c_uint32),
        ("memory", ctypes.c_uint32),
        ("m", _BufferM),
        ("length", ctypes.c_uint32),
        ("reserved2", ctypes.c_uint32),
        ("request_fd", ctypes.c_int32),
    ]


VIDIOC_QUERYCAP = _ioc(_IOC_READ, 0, ctypes.sizeof(Capability))
VIDIOC_S_FMT = _ioc(_IOC_READ | _IOC_WRITE, 5, ctypes.sizeof(Format))
VIDIOC_REQBUFS = _ioc(_IOC_READ | _IOC_WRITE, 8, ctypes.sizeof(RequestBuffers))
VIDIOC_QUERYBUF = _ioc(_IOC_READ | _IOC_WRITE, 9, ctypes.sizeof(Buffer))
VIDIOC_QBUF = _ioc(_IOC_READ | _IOC_WRITE, 15, ctypes.sizeof(Buffer))
VIDIOC_DQBUF = _ioc(_IOC_READ | _IOC_WRITE, 17, ctypes.sizeof(Buffer))
VIDIOC_STREAMON = _ioc(_IOC_WRITE, 18, ctypes.sizeof(ctypes.c_int))
VIDIOC_STREAMOFF = _ioc(_IOC_WRITE, 19, ctypes.sizeof(ctypes.c_int))

IOCTL_NAMES = {
    VIDIOC_QUERYCAP: "VIDIOC_QUERYCAP",
    VIDIOC_S_FMT: "VIDIOC_S_FMT",
    VIDIOC_REQBUFS: "VIDIOC_REQBUFS",
    VIDIOC_QUERYBUF: "VIDIOC_QUERYBUF",
    VIDIOC_QBUF: "VIDIOC_QBUF",
    VIDIOC_DQBUF: "VIDIOC_DQBUF",
    VIDIOC_STREAMON: "VIDIOC_STREAMON",
    VIDIOC_STREAMOFF: "VIDIOC_STREAMOFF",
}


def capture_buffer(index: int = 0) -> Buffer:
    return Buffer(index=index, type=V4L2_BUF_TYPE_VIDEO_CAPTURE, memory=V4L2_MEMORY_MMAP)


def mjpeg_format(width: int, height: int) -> Format:
    fmt = Format(type=V4L2_BUF_TYPE_VIDEO_CAPTURE)
    fmt.fmt.pix.width = width
    fmt.fmt.pix.height = height
    fmt.fmt.pix.pixelformat = V4L2_PIX_FMT_MJPEG
    fmt.fmt.pix.field = V4L2_FIELD_ANY
    return fmt
