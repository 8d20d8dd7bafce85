"""The simulated printer's sensors and how it answers DLE EOT n.

Status bytes per the Epson ESC/POS Command Reference, "DLE EOT": every reply has bit 1 and
bit 4 set and bits 0 and 7 clear (0x12 under mask 0x93), plus:

- n = 1 printer: bit 2 drawer kick-out connector pin 3 high, bit 3 offline, bit 6 feed button.
- n = 2 offline cause: bit 2 cover open, bit 3 feeding by the feed button, bit 5 printing
  stopped by paper end, bit 6 error.
- n = 3 error cause: bit 3 autocutter error, bit 5 unrecoverable error, bit 6 automatically
  recoverable error.
- n = 4 roll paper sensor: bits 2,3 (0x0C) near end, bits 5,6 (0x60) paper end.
"""

from __future__ import annotations

from dataclasses import dataclass

from .commands import Command, StatusRequest

_FIXED = 0x12


@dataclass
class PrinterModel:
    """Sensor and error state; flip the fields to simulate faults.

    ``online`` is the printer's own online switch (False: offline for a reason not modelled
    otherwise, e.g. still starting up). Like a real printer it is also offline while the cover
    is open, the paper has run out or an error is pending, whatever ``online`` says.
    The near-end sensor sits on the roll, so it reports near end once the paper is out too.
    """

    paper_out: bool = False
    paper_near_end: bool = False
    cover_open: bool = False
    online: bool = True
    drawer_pin3_high: bool = False
    feed_button_pressed: bool = False
    autocutter_error: bool = False
    unrecoverable_error: bool = False
    auto_recoverable_error: bool = False

    @property
    def error(self) -> bool:
        return self.autocutter_error or self.unrecoverable_error or self.auto_recoverable_error

    @property
    def offline(self) -> bool:
        return not self.online or self.cover_open or self.paper_out or self.error

    @property
    def can_print(self) -> bool:
        return not self.offline

    def status_byte(self, n: int) -> int:
        """The reply to DLE EOT n (n = 1..4)."""
        if n == 1:
            return (
                _FIXED
                | (0x04 if self.drawer_pin3_high else 0)
                | (0x08 if self.offline else 0)
                | (0x40 if self.feed_button_pressed else 0)
            )
        if n == 2:
            return (
                _FIXED
                | (0x04 if self.cover_open else 0)
                | (0x08 if self.feed_button_pressed else 0)
                | (0x20 if self.paper_out else 0)
                | (0x40 if self.error else 0)
            )
        if n == 3:
            return (
                _FIXED
                | (0x08 if self.autocutter_error else 0)
                | (0x20 if self.unrecoverable_error else 0)
                | (0x40 if self.auto_recoverable_error else 0)
            )
        if n == 4:
            return (
                _FIXED
                | (0x0C if self.paper_near_end or self.paper_out else 0)
                | (0x60 if self.paper_out else 0)
            )
        raise ValueError(f"DLE EOT n must be 1..4, got {n}")

    def answer(self, request: StatusRequest) -> bytes:
        """The one byte sent back for a DLE EOT request."""
        return bytes((self.status_byte(request.n),))

    def handle(self, command: Command) -> bytes:
        """Bytes the printer sends back for ``command`` (empty for everything but DLE EOT)."""
        if isinstance(command, StatusRequest):
            return self.answer(command)
        return b""
