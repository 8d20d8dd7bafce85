"""The contract every device driver fulfils.

Drivers are synchronous: the agent gives each device one owner thread and a command queue
(see ``branchline.agent.device_owner``), so a driver never sees two calls at once and may
block on its transport. The common status model and completion codes follow XFS4IoT.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

from branchline.common.config_reader import SectionReader


class DeviceStatus(StrEnum):
    """The one status model every device reports (XFS4IoT Common.Status.device)."""

    ONLINE = "online"
    OFFLINE = "offline"
    NO_DEVICE = "no_device"
    HARDWARE_ERROR = "hardware_error"
    USER_ERROR = "user_error"
    BUSY = "busy"


class Completion(StrEnum):
    """How a device command ended (XFS4IoT completion codes)."""

    SUCCESS = "success"
    CANCELED = "canceled"
    DEVICE_NOT_READY = "device_not_ready"
    HARDWARE_ERROR = "hardware_error"
    TIMEOUT = "timeout"
    INVALID_DATA = "invalid_data"
    USER_ERROR = "user_error"
    SEQUENCE_ERROR = "sequence_error"
    FRAUD_ATTEMPT = "fraud_attempt"
    UNSUPPORTED = "unsupported"


class DeviceError(Exception):
    """A command failed; ``completion`` says how, ``code`` is a stable machine-readable reason."""

    def __init__(self, completion: Completion, code: str, message: str) -> None:
        super().__init__(message)
        self.completion = completion
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class DeviceGone(DeviceError):
    """The transport is gone (cable pulled, port vanished): the owner closes and reconnects."""

    def __init__(self, message: str) -> None:
        super().__init__(Completion.DEVICE_NOT_READY, "device_gone", message)


class CommandCanceled(DeviceError):
    def __init__(self, message: str = "command canceled") -> None:
        super().__init__(Completion.CANCELED, "canceled", message)


@dataclass(frozen=True)
class StatusReport:
    """A device's state as its driver sees it right now."""

    status: DeviceStatus
    detail: str = ""
    # Device-specific facts worth showing a technician (paper low, capture-bin count, ...).
    facts: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SelfTestResult:
    ok: bool
    detail: str


@dataclass(frozen=True)
class DriverContext:
    """What the agent tells a driver about where it runs."""

    terminal_id: str
    branch: str
    device_name: str


class CancelToken:
    """Set by the owner when a command is canceled or timed out; drivers check it while waiting."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    def cancel(self, reason: str = "canceled") -> None:
        self.reason = reason
        self._event.set()

    @property
    def canceled(self) -> bool:
        return self._event.is_set()

    def raise_if_canceled(self) -> None:
        if self._event.is_set():
            raise CommandCanceled(self.reason)

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True when canceled meanwhile."""
        return self._event.wait(seconds)


CommandHandler = Callable[[dict[str, Any], CancelToken], dict[str, Any]]


class Driver(ABC):
    """One device driver instance owns one device.

    Subclasses read their options in ``__init__`` through the typed accessor they are given
    (unknown or unread options stop the agent at startup), then the owner calls ``open``;
    ``poll`` is called periodically to notice status changes; ``commands`` maps command names
    to handlers. Any ``DeviceGone`` raised from any method makes the owner close the driver,
    report ``no_device`` and reopen with backoff.
    """

    # The device class this driver serves: card_reader, pin_pad, id_reader, printer, tube_station.
    device_class: ClassVar[str]

    def __init__(self, context: DriverContext, options: Any) -> None:
        self.context = context
        # Set by the owner: every transport the driver opens should carry it, so that
        # ``branchline-diag spy`` sees the device's traffic. Called as tap("tx"|"rx", bytes).
        self.tap: Callable[[str, bytes], None] | None = None

    @classmethod
    @abstractmethod
    def read_options(cls, reader: SectionReader) -> Any:
        """Read and validate this driver's options from its ``[device.NAME]`` table."""

    @abstractmethod
    def open(self) -> None:
        """Open the transport and bring the device to a known state. Raises DeviceGone."""

    @abstractmethod
    def close(self) -> None:
        """Release the transport. Never raises."""

    @abstractmethod
    def poll(self) -> StatusReport:
        """Ask the device how it is. Raises DeviceGone when it does not answer at all."""

    @abstractmethod
    def capabilities(self) -> dict[str, str]:
        """What this device can do, as flat facts for operations and the service list."""

    @abstractmethod
    def self_test(self, cancel: CancelToken) -> SelfTestResult:
        """Exercise the device the way a technician would."""

    def commands(self) -> dict[str, CommandHandler]:
        """Named commands the agent (and remote tellers) may run on this device."""
        return {}
