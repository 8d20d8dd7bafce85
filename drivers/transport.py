"""Byte transports for drivers, chosen by URL or path so one driver runs on hardware and the simulator.

- a path (``/dev/ttyUSB0``, ``var/sim/dev/printer``) or any pyserial URL (``spy://``, ``loop://``,
  ``socket://``) opens a serial line through ``serial.serial_for_url``;
- ``usb://VID:PID`` opens a USB bulk device through pyusb (printers).

Every transport can carry a *tap*: a callback that sees each chunk written and read, which is
how ``branchline-diag spy`` shows a device's traffic live.
"""

from __future__ import annotations

import os
import termios
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import serial

from branchline.drivers.base import DeviceGone

# direction ("tx" or "rx"), bytes
Tap = Callable[[str, bytes], None]


class Transport(ABC):
    """A byte pipe to one device. Every failure of the pipe itself raises DeviceGone."""

    def __init__(self) -> None:
        self.tap: Tap | None = None

    @abstractmethod
    def write(self, data: bytes) -> None: ...

    @abstractmethod
    def _read_some(self, size: int, timeout: float) -> bytes:
        """Up to ``size`` bytes, waiting at most ``timeout`` seconds for the first one."""

    @abstractmethod
    def discard_input(self) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    def _tapped(self, direction: str, data: bytes) -> None:
        if data and self.tap is not None:
            self.tap(direction, data)

    def read(self, size: int, timeout: float) -> bytes:
        """Up to ``size`` bytes within ``timeout`` seconds; fewer (maybe none) on timeout."""
        deadline = time.monotonic() + timeout
        out = bytearray()
        while len(out) < size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            chunk = self._read_some(size - len(out), remaining)
            out += chunk
        return bytes(out)


class SerialTransport(Transport):
    def __init__(self, url: str, baudrate: int, timeout: float = 0.05) -> None:
        super().__init__()
        self.url = url
        self.baudrate = baudrate
        try:
            # exclusive=True: a second process opening the same port is an error, not a silent
            # sharer of the device (one owner per device).
            # write_timeout: a line that stops draining (flow control, pulled cable) must fail
            # the write, not hang the device's owner thread.
            kwargs: dict[str, Any] = {
                "baudrate": baudrate,
                "timeout": timeout,
                "write_timeout": 2.0,
            }
            if "://" not in url:
                if not os.path.exists(url):
                    raise DeviceGone(f"serial port {url} does not exist")
                kwargs["exclusive"] = True
            self._port = serial.serial_for_url(url, **kwargs)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise DeviceGone(f"cannot open serial port {url}: {exc}") from exc

    def write(self, data: bytes) -> None:
        try:
            # No flush(): tcdrain() on a pty whose far end has gone blocks forever.
            self._port.write(data)
        except (serial.SerialException, OSError, termios.error) as exc:
            raise DeviceGone(f"write to {self.url} failed: {exc}") from exc
        self._tapped("tx", data)

    def _read_some(self, size: int, timeout: float) -> bytes:
        try:
            self._port.timeout = min(timeout, 0.25)
            data = bytes(self._port.read(size))
        except (serial.SerialException, OSError, TypeError, termios.error) as exc:
            # pyserial raises SerialException("device reports readiness to read but returned no
            # data") when the other end of a pty has gone: the cable is pulled.
            raise DeviceGone(f"read from {self.url} failed: {exc}") from exc
        self._tapped("rx", data)
        return data

    def discard_input(self) -> None:
        try:
            self._port.reset_input_buffer()
        except (serial.SerialException, OSError, termios.error) as exc:
            # termios.error is not an OSError: tcflush on a pty whose master has gone.
            raise DeviceGone(f"{self.url}: {exc}") from exc

    def close(self) -> None:
        try:
            self._port.close()
        except (serial.SerialException, OSError):
            pass


class UsbTransport(Transport):
    """Bulk OUT/IN endpoints of a USB device (ESC/POS printers), through pyusb."""

    def __init__(self, vendor_id: int, product_id: int) -> None:
        super().__init__()
        import usb.core
        import usb.util

        self._usb_core = usb.core
        try:
            dev = usb.core.find(idVendor=vendor_id, idProduct=product_id)
        except (usb.core.USBError, usb.core.NoBackendError) as exc:
            raise DeviceGone(f"USB {vendor_id:04x}:{product_id:04x}: {exc}") from exc
        if dev is None:
            raise DeviceGone(f"USB device {vendor_id:04x}:{product_id:04x} not found")
        try:
            if dev.is_kernel_driver_active(0):
                dev.detach_kernel_driver(0)
            dev.set_configuration()
            intf = dev.get_active_configuration()[(0, 0)]
            self._out = usb.util.find_descriptor(
                intf,
                custom_match=lambda e: (
                    usb.util.endpoint_direction(e.bEndpointAddress) == usb.util.ENDPOINT_OUT
                ),
            )
            self._in = usb.util.find_descriptor(
                intf,
                custom_match=lambda e: (
                    usb.util.endpoint_direction(e.bEndpointAddress) == usb.util.ENDPOINT_IN
                ),
            )
        except usb.core.USBError as exc:
            raise DeviceGone(f"USB {vendor_id:04x}:{product_id:04x}: {exc}") from exc
        self._dev = dev
        self.url = f"usb://{vendor_id:04x}:{product_id:04x}"

    def write(self, data: bytes) -> None:
        try:
            self._out.write(data, timeout=5000)
        except self._usb_core.USBError as exc:
            raise DeviceGone(f"write to {self.url} failed: {exc}") from exc
        self._tapped("tx", data)

    def _read_some(self, size: int, timeout: float) -> bytes:
        if self._in is None:
            return b""
        try:
            data = bytes(self._in.read(max(size, self._in.wMaxPacketSize), int(timeout * 1000)))
        except self._usb_core.USBTimeoutError:
            return b""
        except self._usb_core.USBError as exc:
            raise DeviceGone(f"read from {self.url} failed: {exc}") from exc
        self._tapped("rx", data)
        return data

    def discard_input(self) -> None:
        while self._read_some(64, 0.01):
            pass

    def close(self) -> None:
        import usb.util

        usb.util.dispose_resources(self._dev)


def parse_usb_url(url: str) -> tuple[int, int]:
    """``usb://04b8:0202`` -> (0x04b8, 0x0202); ValueError naming the problem otherwise."""
    body = url.removeprefix("usb://")
    vid, sep, pid = body.partition(":")
    try:
        if not sep:
            raise ValueError
        return int(vid, 16), int(pid, 16)
    except ValueError:
        raise ValueError(f"USB address {url!r} is not usb://VID:PID in hex") from None


def open_transport(url: str, baudrate: int = 9600) -> Transport:
    """Open a transport by URL or path."""
    if url.startswith("usb://"):
        vid, pid = parse_usb_url(url)
        return UsbTransport(vid, pid)
    return SerialTransport(url, baudrate)
