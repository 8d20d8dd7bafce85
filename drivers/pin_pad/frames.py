"""Branchline EPP framing: ``STX LEN_H LEN_L SEQ CMD PAYLOAD... ETX LRC`` in both directions.

Decoding is the shared resynchronising decoder (``branchline.drivers.framing``): anything
that is not a valid frame comes out as ``Malformed`` and the decoder resynchronises on the
next STX.
"""

from __future__ import annotations

from dataclasses import dataclass

from branchline.drivers.framing import Bad, Good, ResyncDecoder
from branchline.drivers.malformed import Malformed

STX = 0x02
ETX = 0x03
MAX_PAYLOAD = 256

_HEADER = 3  # STX LEN_H LEN_L
_TRAILER = 2  # ETX LRC
_MIN_LEN = 2  # SEQ CMD
_MAX_LEN = _MIN_LEN + MAX_PAYLOAD

__all__ = ["ETX", "MAX_PAYLOAD", "STX", "Frame", "FrameDecoder", "Malformed", "encode_frame", "lrc"]


def lrc(data: bytes) -> int:
    value = 0
    for byte in data:
        value ^= byte
    return value


@dataclass(frozen=True)
class Frame:
    seq: int
    cmd: int
    payload: bytes = b""


def encode_frame(seq: int, cmd: int, payload: bytes = b"") -> bytes:
    """A complete frame. Raises ValueError on out-of-range arguments (a caller's bug)."""
    if not 0 <= seq <= 0xFF or not 0 <= cmd <= 0xFF:
        raise ValueError(f"seq {seq} / cmd {cmd} outside 0..255")
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    length = _MIN_LEN + len(payload)
    body = bytes([length >> 8, length & 0xFF, seq, cmd]) + payload + bytes([ETX])
    return bytes([STX]) + body + bytes([lrc(body)])


def _judge(buf: bytearray) -> Good[Frame] | Bad | None:
    """Judge the candidate frame at buf[0] == STX; None when it needs more bytes."""
    if len(buf) < _HEADER:
        return None
    length = (buf[1] << 8) | buf[2]
    if not _MIN_LEN <= length <= _MAX_LEN:
        return Bad(f"bad length: LEN {length} outside {_MIN_LEN}..{_MAX_LEN}", _HEADER)
    total = _HEADER + length + _TRAILER
    if len(buf) < total:
        return None
    etx_at = _HEADER + length
    if buf[etx_at] != ETX:
        return Bad(f"missing ETX: expected 0x03 at offset {etx_at}, got 0x{buf[etx_at]:02X}", total)
    expected = lrc(bytes(buf[1 : etx_at + 1]))
    if buf[etx_at + 1] != expected:
        return Bad(f"bad LRC: expected 0x{expected:02X}, got 0x{buf[etx_at + 1]:02X}", total)
    return Good(Frame(buf[3], buf[4], bytes(buf[5:etx_at])), total)


class FrameDecoder(ResyncDecoder[Frame]):
    """Feed bytes in any chunking; get ``Frame`` and ``Malformed`` items out, in order."""

    start = bytes([STX])

    @property
    def needed(self) -> int:
        """How many more bytes the frame being received needs (1 when none is under way)."""
        if not self._buf or self._buf[0] != STX:
            return 1
        if len(self._buf) < _HEADER:
            return _HEADER - len(self._buf)
        length = (self._buf[1] << 8) | self._buf[2]
        return max(1, _HEADER + length + _TRAILER - len(self._buf))

    def judge(self, buf: bytearray) -> Good[Frame] | Bad | None:
        return _judge(buf)

    def truncated(self, buf: bytearray) -> str:
        return f"truncated frame: {len(buf)} bytes then silence"
