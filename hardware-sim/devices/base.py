"""What every simulated device offers the simulator and its control API."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Protocol


class Line(Protocol):
    """The link a device is reached over: a pty (serial devices) or a network endpoint."""

    link_path: Path
    slave_name: str
    baud: int

    @property
    def plugged(self) -> bool: ...

    def plug(self) -> None: ...

    def unplug(self) -> None: ...

    def write(self, data: bytes) -> None: ...

    def set_baud(self, baud: int) -> None: ...


class SimError(Exception):
    """A control request the device cannot honour; the message names what was wrong.
    ``field``: the request field it concerns, when the raiser knows better than the
    boundary's default (``params`` for an action, ``fault`` for a fault); ``reason``: a
    stable code a scripted caller can act on without reading the message."""

    def __init__(self, message: str, *, field: str = "", reason: str = "sim_refused") -> None:
        super().__init__(message)
        self.field = field
        self.reason = reason


class SimulatedDevice(ABC):
    name: str
    faults_available: tuple[str, ...] = ()

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.faults_active: set[str] = set()
        # Set by the simulator: sends bytes to the driver on this device's line.
        self.send = lambda data: None

    @abstractmethod
    def on_bytes(self, data: bytes) -> None:
        """Bytes the driver wrote."""

    def set_fault(self, fault: str, active: bool) -> None:
        if fault not in self.faults_available:
            raise SimError(
                f"fault: {self.name} has no fault {fault!r}; available: "
                f"{', '.join(self.faults_available) or 'none'}"
            )
        if active:
            self.faults_active.add(fault)
        else:
            self.faults_active.discard(fault)

    def act(self, action: str, params: dict[str, str]) -> dict[str, str]:
        raise SimError(f"action: {self.name} has no action {action!r}")

    def facts(self) -> dict[str, str]:
        return {}

    def make_line(self) -> Line | None:
        """A device reached over the network returns its endpoint; None: a pseudo-terminal."""
        return None

    def reset_line(self) -> None:
        """The cable was replugged: drop any half-received input."""
