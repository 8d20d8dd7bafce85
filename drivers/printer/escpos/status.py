"""Real-time status: DLE EOT n requests and decoders for their one-byte replies.

Epson ESC/POS Command Reference, "DLE EOT" (transmit real-time status). Every reply byte has
the same fixed bits: bit 0 = 0, bit 1 = 1, bit 4 = 1, bit 7 = 0, i.e. ``byte & 0x93 == 0x12``.
(Bit 4 = 1 is also what tells a DLE EOT reply from an Automatic Status Back byte, whose bit 4 is
0: reference appendix "Transmission status identification".) A byte with other fixed bits is not
a DLE EOT reply, so it decodes to :class:`MalformedStatus` and is never guessed at.

Bits by request (``n``):

- 1 printer: bit 2 drawer kick-out connector pin 3 high, bit 3 offline, bit 5 waiting for
  online recovery, bit 6 paper feed button pressed.
- 2 offline cause: bit 2 cover open, bit 3 paper being fed by the feed button, bit 5 printing
  stopped by paper end, bit 6 error.
- 3 error cause: bit 2 undefined, bit 3 autocutter error, bit 5 unrecoverable error, bit 6
  automatically recoverable error (e.g. head too hot).
- 4 roll paper sensor: bits 2,3 near end (0x0C), bits 5,6 paper end (0x60). The reference
  defines only both-clear and both-set; some compatible printers report the two bits of a pair
  from separate sensors, so either bit set counts as the condition (a fault is never hidden).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from ._codes import DLE, EOT

FIXED_MASK = 0x93
FIXED_VALUE = 0x12


class StatusKind(IntEnum):
    """DLE EOT n."""

    PRINTER = 1
    OFFLINE_CAUSE = 2
    ERROR_CAUSE = 3
    ROLL_PAPER = 4


@dataclass(frozen=True, slots=True)
class PrinterStatus:
    """Reply to DLE EOT 1."""

    drawer_pin3_high: bool
    offline: bool
    waiting_online_recovery: bool
    feed_button_pressed: bool


@dataclass(frozen=True, slots=True)
class OfflineCause:
    """Reply to DLE EOT 2."""

    cover_open: bool
    feeding_by_button: bool
    paper_end_stop: bool
    error: bool


@dataclass(frozen=True, slots=True)
class ErrorCause:
    """Reply to DLE EOT 3."""

    autocutter_error: bool
    unrecoverable_error: bool
    auto_recoverable_error: bool


@dataclass(frozen=True, slots=True)
class RollPaperStatus:
    """Reply to DLE EOT 4."""

    near_end: bool
    paper_end: bool


@dataclass(frozen=True, slots=True)
class MalformedStatus:
    """A reply that is not a valid DLE EOT status byte; ``reply`` is what arrived."""

    request: StatusKind
    reply: bytes
    reason: str


StatusReply = PrinterStatus | OfflineCause | ErrorCause | RollPaperStatus | MalformedStatus


def request_status(n: StatusKind | int) -> bytes:
    """DLE EOT n (10 04 n), n = 1..4."""
    return bytes((DLE, EOT, StatusKind(n).value))


def _reply_byte(request: StatusKind, reply: int | bytes) -> int | MalformedStatus:
    """The reply as an int with valid fixed bits, or why it is not one."""
    if isinstance(reply, bytes | bytearray):
        raw = bytes(reply)
        if len(raw) != 1:
            return MalformedStatus(request, raw, f"expected 1 byte, got {len(raw)}")
        value = raw[0]
    elif isinstance(reply, int) and not isinstance(reply, bool) and 0 <= reply <= 255:
        value = reply
    else:
        return MalformedStatus(request, b"", f"not a byte: {reply!r}")
    if value & FIXED_MASK != FIXED_VALUE:
        return MalformedStatus(
            request,
            bytes((value,)),
            f"fixed bits wrong: {value:#04x} & 0x93 = {value & FIXED_MASK:#04x}, expected 0x12",
        )
    return value


def _bit(value: int, n: int) -> bool:
    return bool(value >> n & 1)


def decode_printer_status(reply: int | bytes) -> PrinterStatus | MalformedStatus:
    """Decode the reply to DLE EOT 1."""
    v = _reply_byte(StatusKind.PRINTER, reply)
    if isinstance(v, MalformedStatus):
        return v
    return PrinterStatus(
        drawer_pin3_high=_bit(v, 2),
        offline=_bit(v, 3),
        waiting_online_recovery=_bit(v, 5),
        feed_button_pressed=_bit(v, 6),
    )


def decode_offline_cause(reply: int | bytes) -> OfflineCause | MalformedStatus:
    """Decode the reply to DLE EOT 2."""
    v = _reply_byte(StatusKind.OFFLINE_CAUSE, reply)
    if isinstance(v, MalformedStatus):
        return v
    return OfflineCause(
        cover_open=_bit(v, 2),
        feeding_by_button=_bit(v, 3),
        paper_end_stop=_bit(v, 5),
        error=_bit(v, 6),
    )


def decode_error_cause(reply: int | bytes) -> ErrorCause | MalformedStatus:
    """Decode the reply to DLE EOT 3 (bit 2 is undefined in the reference and ignored)."""
    v = _reply_byte(StatusKind.ERROR_CAUSE, reply)
    if isinstance(v, MalformedStatus):
        return v
    return ErrorCause(
        autocutter_error=_bit(v, 3),
        unrecoverable_error=_bit(v, 5),
        auto_recoverable_error=_bit(v, 6),
    )


def decode_roll_paper(reply: int | bytes) -> RollPaperStatus | MalformedStatus:
    """Decode the reply to DLE EOT 4."""
    v = _reply_byte(StatusKind.ROLL_PAPER, reply)
    if isinstance(v, MalformedStatus):
        return v
    return RollPaperStatus(near_end=bool(v & 0x0C), paper_end=bool(v & 0x60))


def decode_status(n: StatusKind | int, reply: int | bytes) -> StatusReply:
    """Decode the reply to DLE EOT ``n``. Never raises for any ``reply``; a bad one is Malformed.

    Raises ValueError only for ``n`` outside 1..4 (a programming error, not a device fault).
    """
    request = StatusKind(n)
    if request is StatusKind.PRINTER:
        return decode_printer_status(reply)
    if request is StatusKind.OFFLINE_CAUSE:
        return decode_offline_cause(reply)
    if request is StatusKind.ERROR_CAUSE:
        return decode_error_cause(reply)
    return decode_roll_paper(reply)
