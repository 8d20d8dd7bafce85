"""A driver's line straight into a simulated device, in memory, for the serial drivers' unit
tests (the face module, the ID reader): what the driver writes goes to the device's
``on_bytes``, what the device sends waits to be read; ``silent`` drops what the driver writes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import pytest

from branchline.drivers import serial_link
from branchline.drivers.transport import Transport


class SimDevice(Protocol):
    send: Callable[[bytes], None]

    def on_bytes(self, data: bytes) -> Any: ...


class Loopback(Transport):
    """The driver's line straight into a simulated device's on_bytes, and back."""

    def __init__(self, device: SimDevice) -> None:
        super().__init__()
        self.device = device
        self.silent = False
        self._inbox = bytearray()
        self._lock = threading.Lock()
        device.send = self._receive

    def _receive(self, data: bytes) -> None:
        with self._lock:
            self._inbox += data

    def write(self, data: bytes) -> None:
        self._tapped("tx", data)
        if not self.silent:
            self.device.on_bytes(data)

    def _read_some(self, size: int, timeout: float) -> bytes:
        with self._lock:
            out = bytes(self._inbox[:size])
            del self._inbox[: len(out)]
        if not out:
            time.sleep(min(timeout, 0.005))
        self._tapped("rx", out)
        return out

    def discard_input(self) -> None:
        with self._lock:
            self._inbox.clear()

    def close(self) -> None:
        pass


def wire(device: SimDevice, monkeypatch: pytest.MonkeyPatch) -> Loopback:
    """A loopback to ``device`` that the next driver to open gets as its line."""
    loop = Loopback(device)
    monkeypatch.setattr(serial_link, "open_transport", lambda url, baudrate: loop)
    return loop
