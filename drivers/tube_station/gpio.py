"""The station's own sensor inputs: carrier present and door closed, read over GPIO.

Two backends behind one small interface:

- ``PeripheryGpio``: two input lines of a GPIO character device (``/dev/gpiochipN``) through
  python-periphery, as on the terminal's I/O board;
- ``SimGpio``: a small JSON state file that ``branchline-sim`` rewrites atomically whenever
  the simulated sensors change (``<run-dir>/gpio/tube_station``), so CI runs the same
  cross-check without GPIO hardware.

The file format is shared with the simulator through ``encode_sim_state``/``decode_sim_state``.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from branchline.drivers.base import Completion, DeviceError


@dataclass(frozen=True)
class GpioReading:
    door_closed: bool
    carrier_present: bool


class GpioFailed(DeviceError):
    """A GPIO input could not be read; the message names which and why."""

    def __init__(self, message: str) -> None:
        super().__init__(Completion.HARDWARE_ERROR, "gpio_failed", message)


class GpioInputs(ABC):
    @abstractmethod
    def read(self) -> GpioReading:
        """Both inputs now; raises GpioFailed."""

    @abstractmethod
    def close(self) -> None:
        """Release the lines. Never raises."""

    @abstractmethod
    def describe(self) -> str:
        """Where the inputs come from, for capabilities and messages."""


class PeripheryGpio(GpioInputs):
    def __init__(
        self, chip: str, carrier_present_line: int, door_closed_line: int, active_low: bool
    ) -> None:
        from periphery import GPIO, GPIOError

        self._chip = chip
        self._lines = (carrier_present_line, door_closed_line)
        self._error = GPIOError
        opened: list[Any] = []
        try:
            for line in self._lines:
                opened.append(GPIO(chip, line, "in", inverted=active_low))
        except (GPIOError, OSError, TypeError, ValueError) as exc:
            for gpio in opened:
                gpio.close()
            raise GpioFailed(f"cannot open GPIO {chip} line {line} as input: {exc}") from None
        self._present, self._door = opened

    def read(self) -> GpioReading:
        try:
            return GpioReading(door_closed=self._door.read(), carrier_present=self._present.read())
        except (self._error, OSError) as exc:
            raise GpioFailed(f"reading GPIO {self._chip} failed: {exc}") from None

    def close(self) -> None:
        for gpio in (self._present, self._door):
            try:
                gpio.close()
            except (self._error, OSError):
                pass

    def describe(self) -> str:
        present, door = self._lines
        return f"{self._chip} lines present={present} door={door}"


def encode_sim_state(reading: GpioReading) -> bytes:
    return json.dumps(
        {"door_closed": reading.door_closed, "carrier_present": reading.carrier_present},
        sort_keys=True,
    ).encode()


def decode_sim_state(data: bytes) -> GpioReading:
    """Raises ValueError naming what is wrong with the file's contents."""
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ValueError("expected a JSON object")
    values: dict[str, bool] = {}
    for key in ("door_closed", "carrier_present"):
        value = doc.get(key)
        if not isinstance(value, bool):
            raise ValueError(f"{key}: expected true or false, got {value!r}")
        values[key] = value
    return GpioReading(**values)


def write_sim_state(path: Path, reading: GpioReading) -> None:
    """Replace the state file atomically: a reader never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(encode_sim_state(reading))
    os.replace(tmp, path)


class SimGpio(GpioInputs):
    def __init__(self, path: Path) -> None:
        self._path = path
        self.read()  # fail at open, not at the first poll

    def read(self) -> GpioReading:
        try:
            data = self._path.read_bytes()
        except OSError as exc:
            raise GpioFailed(f"GPIO state file {self._path}: {exc.strerror or exc}") from None
        try:
            return decode_sim_state(data)
        except ValueError as exc:
            raise GpioFailed(f"GPIO state file {self._path}: {exc}") from None

    def close(self) -> None:
        pass

    def describe(self) -> str:
        return f"sim file {self._path}"
