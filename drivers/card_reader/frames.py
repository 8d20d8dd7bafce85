"""Creator CRT-591-style serial framing: encoders and an incremental, never-raising decoder.

Wire format (Creator CRT-591-M001 communication protocol, sections 1.1-1.2)::

    command   F2 ADDR LEN_H LEN_L 'C' CM PM DATA...          03 BCC
    positive  F2 ADDR LEN_H LEN_L 'P' CM PM ST0 ST1 DATA...  03 BCC
    negative  F2 ADDR LEN_H LEN_L 'N' CM PM E1 E0 DATA...    03 BCC
    control   06 (ACK)   15 (NAK)   04 (EOT), each a single byte outside any frame

LEN counts the TEXT bytes (from the head byte 'C'/'P'/'N' to the end of DATA); BCC is the
XOR of every byte from F2 through 03 inclusive. DATA is at most 512 bytes (spec 1.2.1).

Branchline's reader variant sends two status bytes in a positive reply: ST0 is the card
position ('0' no card, '1' card at the gate, '2' card inside) and ST1 the capture-bin state
('0' not full, '1' full). The CRT-591-M001 dispenser document has a third byte (st1 stacker,
st2 bin); on such a unit the extra byte simply arrives as the first DATA byte. E1 E0 of a
negative reply are two ASCII characters looked up in ``commands.ERRORS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TypeAlias

from branchline.drivers.framing import Bad, Good, ResyncDecoder
from branchline.drivers.malformed import Malformed

STX = 0xF2
ETX = 0x03
ACK = 0x06
NAK = 0x15
EOT = 0x04

HEAD_COMMAND = 0x43  # 'C'
HEAD_POSITIVE = 0x50  # 'P'
HEAD_NEGATIVE = 0x4E  # 'N'

MAX_DATA_LEN = 512
_HEADER_LEN = 4  # F2 ADDR LEN_H LEN_L
_TRAILER_LEN = 2  # 03 BCC
# TEXT before DATA: 'C' CM PM, or 'P'/'N' CM PM plus two status bytes.
_MIN_TEXT = {HEAD_COMMAND: 3, HEAD_POSITIVE: 5, HEAD_NEGATIVE: 5}


@dataclass(frozen=True)
class Ack:
    """The peer accepted the last frame (0x06)."""


@dataclass(frozen=True)
class Nak:
    """The peer rejected the last frame and wants it again (0x15)."""


@dataclass(frozen=True)
class Eot:
    """The host cancels the command in progress (0x04)."""


@dataclass(frozen=True)
class CommandFrame:
    """Host to reader: command ``cm`` with parameter ``pm``."""

    address: int
    cm: int
    pm: int
    data: bytes = b""


class CardPosition(Enum):
    """ST0 of a positive reply."""

    NO_CARD = 0x30
    AT_GATE = 0x31
    INSIDE = 0x32


@dataclass(frozen=True)
class ReplyFrame:
    """Reader to host. ``status`` is ST0 ST1 when ``positive``, else the error code E1 E0."""

    address: int
    cm: int
    pm: int
    positive: bool
    status: bytes
    data: bytes = b""

    @property
    def error_code(self) -> str | None:
        """The two-character error code of a negative reply (e.g. "10"), else None."""
        if self.positive:
            return None
        return self.status.decode("latin-1")

    @property
    def card_position(self) -> CardPosition | None:
        """Where the card is, for a positive reply with a known ST0; else None."""
        if not self.positive:
            return None
        try:
            return CardPosition(self.status[0])
        except ValueError:
            return None

    @property
    def bin_full(self) -> bool | None:
        """The capture-bin state from ST1 of a positive reply; None when unknown."""
        if not self.positive or self.status[1:2] not in (b"0", b"1"):
            return None
        return self.status[1:2] == b"1"


Frame: TypeAlias = CommandFrame | ReplyFrame
Item: TypeAlias = Ack | Nak | Eot | CommandFrame | ReplyFrame | Malformed[bytes]

_CONTROL: dict[int, Ack | Nak | Eot] = {ACK: Ack(), NAK: Nak(), EOT: Eot()}


def bcc(data: bytes) -> int:
    """XOR of all bytes: the block check character over F2..03."""
    value = 0
    for byte in data:
        value ^= byte
    return value


def _frame(address: int, text: bytes) -> bytes:
    if not 0 <= address <= 0xFF:
        raise ValueError(f"address {address} outside 0..255")
    if len(text) > _MIN_TEXT[text[0]] + MAX_DATA_LEN:
        raise ValueError(f"DATA longer than {MAX_DATA_LEN} bytes")
    body = bytes([STX, address, len(text) >> 8, len(text) & 0xFF]) + text + bytes([ETX])
    return body + bytes([bcc(body)])


def _byte(name: str, value: int) -> int:
    if not 0 <= value <= 0xFF:
        raise ValueError(f"{name} {value} outside 0..255")
    return value


def encode_command(cm: int, pm: int, data: bytes = b"", address: int = 0) -> bytes:
    """A complete command frame. Raises ValueError on out-of-range arguments."""
    return _frame(address, bytes([HEAD_COMMAND, _byte("cm", cm), _byte("pm", pm)]) + data)


def encode_reply(
    cm: int,
    pm: int,
    status: bytes,
    data: bytes = b"",
    *,
    positive: bool = True,
    address: int = 0,
) -> bytes:
    """A complete reply frame; ``status`` is ST0 ST1 (positive) or E1 E0 (negative)."""
    if len(status) != 2:
        raise ValueError("status must be exactly two bytes (ST0 ST1 or E1 E0)")
    head = HEAD_POSITIVE if positive else HEAD_NEGATIVE
    text = bytes([head, _byte("cm", cm), _byte("pm", pm)]) + status + data
    return _frame(address, text)


def encode_item(item: CommandFrame | ReplyFrame | Ack | Nak | Eot) -> bytes:
    """The wire bytes of a decoded item (the inverse of decoding)."""
    if isinstance(item, CommandFrame):
        return encode_command(item.cm, item.pm, item.data, item.address)
    if isinstance(item, ReplyFrame):
        return encode_reply(
            item.cm, item.pm, item.status, item.data, positive=item.positive, address=item.address
        )
    return bytes([{Ack: ACK, Nak: NAK, Eot: EOT}[type(item)]])


def _judge(buf: bytearray) -> Good[Frame] | Bad | None:
    """Judge the candidate frame starting at buf[0] == STX; None when it needs more bytes."""
    if len(buf) < _HEADER_LEN + 1:
        return None
    text_len = (buf[2] << 8) | buf[3]
    head = buf[4]
    if head not in _MIN_TEXT:
        return Bad(
            f"unknown TEXT head 0x{head:02X} (expected 'C' 0x43, 'P' 0x50 or 'N' 0x4E)",
            _HEADER_LEN + 1,
        )
    shortest = _MIN_TEXT[head]
    if not shortest <= text_len <= shortest + MAX_DATA_LEN:
        return Bad(
            f"bad length: LEN {text_len} outside {shortest}..{shortest + MAX_DATA_LEN} "
            f"for a '{chr(head)}' frame",
            _HEADER_LEN + 1,
        )
    total = _HEADER_LEN + text_len + _TRAILER_LEN
    if len(buf) < total:
        return None
    etx_at = _HEADER_LEN + text_len
    if buf[etx_at] != ETX:
        return Bad(f"missing ETX: expected 0x03 at offset {etx_at}, got 0x{buf[etx_at]:02X}", total)
    expected = bcc(bytes(buf[: etx_at + 1]))
    if buf[etx_at + 1] != expected:
        return Bad(f"bad checksum: expected 0x{expected:02X}, got 0x{buf[etx_at + 1]:02X}", total)
    address, text = buf[1], bytes(buf[_HEADER_LEN:etx_at])
    if head == HEAD_COMMAND:
        return Good(CommandFrame(address, text[1], text[2], text[3:]), total)
    frame = ReplyFrame(address, text[1], text[2], head == HEAD_POSITIVE, text[3:5], text[5:])
    return Good(frame, total)


class FrameDecoder(ResyncDecoder[Ack | Nak | Eot | Frame]):
    """Feed bytes in any chunking; get complete items out, in order (see ``drivers.framing``).

    ACK, NAK and EOT outside a frame come out as ``Ack``, ``Nak`` and ``Eot``.
    """

    start = bytes([STX])

    def judge(self, buf: bytearray) -> Good[Frame] | Bad | None:
        return _judge(buf)

    def truncated(self, buf: bytearray) -> str:
        if len(buf) < _HEADER_LEN:
            return f"truncated frame: only {len(buf)} bytes, header incomplete"
        total = _HEADER_LEN + ((buf[2] << 8) | buf[3]) + _TRAILER_LEN
        return f"truncated frame: only {len(buf)} of {total} bytes"

    def control(self, byte: int) -> Ack | Nak | Eot | None:
        return _CONTROL.get(byte)
