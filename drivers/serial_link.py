"""What the drivers that speak one framed request/reply protocol over a serial line share (the
face module, the GA 467 ID reader): the protocol link made when the line opens and dropped
when it closes, and how a failed status exchange reads as a device status."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar, Generic, TypeVar

from branchline.drivers.base import (
    Completion,
    DeviceError,
    DeviceGone,
    DeviceStatus,
    Driver,
    DriverContext,
    StatusReport,
)
from branchline.drivers.transport import Transport, open_transport

LinkT = TypeVar("LinkT")


class SerialLinkDriver(Driver, Generic[LinkT]):
    """A driver whose device answers over one transport (``options.port``, ``.baudrate``)."""

    # As errors name the device: "face camera", "ID reader".
    device_name: ClassVar[str]

    def __init__(self, context: DriverContext, options: Any) -> None:
        super().__init__(context, options)
        self.options: Any = options
        self._transport: Transport | None = None
        self._link: LinkT | None = None

    @abstractmethod
    def make_link(self, transport: Transport) -> LinkT:
        """The protocol link over a freshly opened transport."""

    def open(self) -> None:
        self._transport = open_transport(self.options.port, self.options.baudrate)
        self._transport.tap = self.tap
        self._transport.discard_input()
        self._link = self.make_link(self._transport)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        self._transport = None
        self._link = None

    def _line(self) -> LinkT:
        if self._link is None:
            raise DeviceGone(f"{self.device_name} is not open")
        return self._link


def status_failure(exc: DeviceError, fact: str, no_reply: type[DeviceError]) -> StatusReport:
    """The status when the status exchange failed with ``exc`` (not DeviceGone): no reply, or
    a reply damaged twice (a bad line), is offline; a failure the device reported is a
    hardware error. ``fact`` is the status fact naming which."""
    if isinstance(exc, no_reply):
        return StatusReport(DeviceStatus.OFFLINE, exc.message, {fact: "no_reply"})
    if exc.completion is Completion.INVALID_DATA:
        return StatusReport(DeviceStatus.OFFLINE, exc.message, {fact: "garbled"})
    return StatusReport(DeviceStatus.HARDWARE_ERROR, exc.message, {fact: exc.code})
