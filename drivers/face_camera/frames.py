"""Framing of the face-module command set (docs/protocols/face-camera.md). Pure: no I/O.

A frame, both directions::

    SOF 0xFA 0xCE | LEN (4, big-endian) | SEQ | CMD | PAYLOAD | CRC32 (4, big-endian)

LEN counts SEQ, CMD and PAYLOAD (so at least 2); the CRC-32 (ISO-HDLC, as zlib) covers LEN
through PAYLOAD. A reply's CMD is the request's | 0x80 and its payload starts with a result
byte. Images make frames large, hence the 4-byte length and a 32-bit CRC; ``MAX_PAYLOAD``
bounds what a decoder will buffer.

Decoding never raises: anything that is not a good frame comes out as ``Malformed`` naming
what was wrong, and the decoder resynchronises on the next SOF.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from enum import IntEnum

SOF = b"\xfa\xce"
HEADER = 6  # SOF + LEN
TRAILER = 4  # CRC32
MAX_PAYLOAD = 2 * 1024 * 1024  # a 2 MiB JPEG is far above any sane capture


class Command(IntEnum):
    STATUS = 0x01
    GET_INFO = 0x02
    CAPTURE = 0x10
    SELF_TEST = 0x20


class Result(IntEnum):
    OK = 0x00
    BAD_COMMAND = 0x01
    BAD_PARAMS = 0x02
    BUSY = 0x03
    BAD_CRC = 0x04
    SENSOR_FAULT = 0x10  # the visible sensor does not deliver frames
    IR_FAULT = 0x11  # the infrared sensor or illuminator failed (self-test only)
    CAPTURE_TIMEOUT = 0x12  # no usable frame within the requested time


@dataclass(frozen=True)
class Frame:
    seq: int
    cmd: int
    payload: bytes


@dataclass(frozen=True)
class Malformed:
    reason: str
    raw: bytes


def encode_frame(seq: int, cmd: int, payload: bytes = b"") -> bytes:
    if not 0 <= seq <= 255 or not 0 <= cmd <= 255:
        raise ValueError(f"seq and cmd must be bytes, got {seq}, {cmd}")
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload: {len(payload)} bytes, at most {MAX_PAYLOAD}")
    body = struct.pack(">IBB", 2 + len(payload), seq, cmd) + payload
    return SOF + body + struct.pack(">I", zlib.crc32(body))


class FrameDecoder:
    """Feed bytes, get Frames and Malformed items; keeps partial frames between feeds."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def wanted(self) -> int:
        """How many bytes would complete the frame in progress (a read-size hint)."""
        if len(self._buf) < HEADER:
            return HEADER - len(self._buf)
        (length,) = struct.unpack_from(">I", self._buf, 2)
        return max(1, min(length, MAX_PAYLOAD + 2) + HEADER + TRAILER - len(self._buf))

    def feed(self, data: bytes) -> list[Frame | Malformed]:
        self._buf += data
        out: list[Frame | Malformed] = []
        while self._buf:
            item = self._next()
            if item is None:
                break
            out.append(item)
        return out

    def flush(self) -> list[Frame | Malformed]:
        """End of input: whatever is buffered is a truncated frame."""
        if not self._buf:
            return []
        raw = bytes(self._buf)
        self._buf.clear()
        return [Malformed(f"truncated frame: {len(raw)} bytes and no more came", raw)]

    def _skip_noise(self) -> Malformed | None:
        start = self._buf.find(SOF)
        if start == 0:
            return None
        if start < 0:
            # Keep a trailing 0xFA: it may be the first half of a SOF.
            start = len(self._buf) - 1 if self._buf.endswith(SOF[:1]) else len(self._buf)
            if start == 0:
                return None
        noise = bytes(self._buf[:start])
        del self._buf[:start]
        return Malformed(f"noise: {len(noise)} bytes outside a frame", noise)

    def _next(self) -> Frame | Malformed | None:
        noise = self._skip_noise()
        if noise is not None:
            return noise
        if len(self._buf) < HEADER:
            return None
        (length,) = struct.unpack_from(">I", self._buf, 2)
        if length < 2 or length > MAX_PAYLOAD + 2:
            raw = bytes(self._buf[:HEADER])
            del self._buf[:2]  # resynchronise after this SOF
            return Malformed(f"bad length: {length} (2 to {MAX_PAYLOAD + 2})", raw)
        total = HEADER + length + TRAILER
        if len(self._buf) < total:
            return None
        raw = bytes(self._buf[:total])
        del self._buf[:total]
        body = raw[2 : HEADER + length]
        (crc,) = struct.unpack_from(">I", raw, HEADER + length)
        if zlib.crc32(body) != crc:
            return Malformed(f"bad checksum: CRC32 {crc:08x}, computed {zlib.crc32(body):08x}", raw)
        return Frame(seq=raw[6], cmd=raw[7], payload=raw[8 : HEADER + length])
