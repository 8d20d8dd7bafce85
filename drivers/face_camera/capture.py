"""The face module's messages: CAPTURE, STATUS, GET_INFO and SELF_TEST payloads. Pure.

Numbers big-endian. A CAPTURE ok-reply carries the module's own judgement of the capture
(faces seen, liveness from the infrared channel, quality) with the visible-light JPEG, so
the server can refuse a bad capture by name before any matching.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum, StrEnum

from branchline.drivers.face_camera.frames import MAX_PAYLOAD, Malformed

CAPTURE_HEAD = struct.Struct(
    ">BBHHhhhHHI"
)  # count, liveness, score, sharpness, yaw..roll, w, h, len
STATUS_BODY = struct.Struct(">BI")  # flags, captures
MIN_TIMEOUT_MS = 100
MAX_TIMEOUT_MS = 30_000
SCORE_UNAVAILABLE = 0xFFFF
JPEG_SOI = b"\xff\xd8"


class Liveness(StrEnum):
    LIVE = "live"
    NOT_LIVE = "not_live"
    UNAVAILABLE = "unavailable"  # no infrared channel (a UVC camera) or it failed


LIVENESS_CODES = {Liveness.UNAVAILABLE: 0, Liveness.LIVE: 1, Liveness.NOT_LIVE: 2}
LIVENESS_BY_CODE = {v: k for k, v in LIVENESS_CODES.items()}


class StatusFlag(IntEnum):
    SENSOR_FAULT = 0x01
    IR_FAULT = 0x02


@dataclass(frozen=True)
class Quality:
    face_count: int
    sharpness: float  # 0..1, the module's focus measure
    yaw_deg: float
    pitch_deg: float
    roll_deg: float


@dataclass(frozen=True)
class Capture:
    jpeg: bytes
    width: int
    height: int
    liveness: Liveness
    liveness_score: float | None  # 0..1; None when unavailable
    quality: Quality


@dataclass(frozen=True)
class ModuleStatus:
    sensor_fault: bool
    ir_fault: bool
    captures: int


def encode_capture_request(timeout_ms: int) -> bytes:
    if not MIN_TIMEOUT_MS <= timeout_ms <= MAX_TIMEOUT_MS:
        raise ValueError(f"timeout_ms: {MIN_TIMEOUT_MS} to {MAX_TIMEOUT_MS}, got {timeout_ms}")
    return struct.pack(">H", timeout_ms)


def decode_capture_request(payload: bytes) -> int | Malformed:
    if len(payload) != 2:
        return Malformed(f"capture request: {len(payload)} bytes, expected 2", payload)
    (timeout_ms,) = struct.unpack(">H", payload)
    if not MIN_TIMEOUT_MS <= timeout_ms <= MAX_TIMEOUT_MS:
        return Malformed(f"capture request: timeout {timeout_ms} ms out of range", payload)
    return timeout_ms


def _tenths(value: float) -> int:
    return max(-1800, min(1800, round(value * 10)))


def encode_capture(capture: Capture) -> bytes:
    """The ok-reply payload after the result byte."""
    q = capture.quality
    score = (
        SCORE_UNAVAILABLE
        if capture.liveness_score is None
        else round(max(0.0, min(1.0, capture.liveness_score)) * 1000)
    )
    head = CAPTURE_HEAD.pack(
        q.face_count,
        LIVENESS_CODES[capture.liveness],
        score,
        round(max(0.0, min(1.0, q.sharpness)) * 1000),
        _tenths(q.yaw_deg),
        _tenths(q.pitch_deg),
        _tenths(q.roll_deg),
        capture.width,
        capture.height,
        len(capture.jpeg),
    )
    return head + capture.jpeg


def decode_capture(payload: bytes) -> Capture | Malformed:
    if len(payload) < CAPTURE_HEAD.size:
        return Malformed(
            f"capture reply: {len(payload)} bytes, shorter than its {CAPTURE_HEAD.size}-byte head",
            payload[:64],
        )
    count, live_code, score, sharp, yaw, pitch, roll, width, height, size = (
        CAPTURE_HEAD.unpack_from(payload)
    )
    jpeg = payload[CAPTURE_HEAD.size :]
    if size != len(jpeg) or size > MAX_PAYLOAD:
        return Malformed(f"capture reply: image length {size}, {len(jpeg)} bytes follow", b"")
    if live_code not in LIVENESS_BY_CODE:
        return Malformed(f"capture reply: unknown liveness code {live_code}", b"")
    liveness = LIVENESS_BY_CODE[live_code]
    if (score == SCORE_UNAVAILABLE) != (liveness is Liveness.UNAVAILABLE):
        return Malformed(f"capture reply: liveness {liveness} with score {score}", b"")
    if score != SCORE_UNAVAILABLE and score > 1000:
        return Malformed(f"capture reply: liveness score {score} above 1000", b"")
    if sharp > 1000:
        return Malformed(f"capture reply: sharpness {sharp} above 1000", b"")
    if not jpeg.startswith(JPEG_SOI):
        return Malformed("capture reply: the image is not a JPEG (no SOI marker)", b"")
    return Capture(
        jpeg=jpeg,
        width=width,
        height=height,
        liveness=liveness,
        liveness_score=None if score == SCORE_UNAVAILABLE else score / 1000,
        quality=Quality(count, sharp / 1000, yaw / 10, pitch / 10, roll / 10),
    )


def encode_status(status: ModuleStatus) -> bytes:
    flags = (StatusFlag.SENSOR_FAULT if status.sensor_fault else 0) | (
        StatusFlag.IR_FAULT if status.ir_fault else 0
    )
    return STATUS_BODY.pack(flags, status.captures)


def decode_status(payload: bytes) -> ModuleStatus | Malformed:
    if len(payload) != STATUS_BODY.size:
        return Malformed(f"status reply: {len(payload)} bytes, expected {STATUS_BODY.size}", b"")
    flags, captures = STATUS_BODY.unpack(payload)
    return ModuleStatus(
        bool(flags & StatusFlag.SENSOR_FAULT), bool(flags & StatusFlag.IR_FAULT), captures
    )


def encode_texts(*texts: str) -> bytes:
    """GET_INFO and SELF_TEST bodies: each text as len(1) + ASCII."""
    out = bytearray()
    for text in texts:
        raw = text.encode("ascii")[:255]
        out += bytes([len(raw)]) + raw
    return bytes(out)


def decode_texts(payload: bytes, count: int) -> list[str] | Malformed:
    texts: list[str] = []
    at = 0
    for _ in range(count):
        if at >= len(payload) or at + 1 + payload[at] > len(payload):
            return Malformed(f"text field {len(texts) + 1} of {count} runs past the payload", b"")
        raw = payload[at + 1 : at + 1 + payload[at]]
        at += 1 + payload[at]
        if not raw.isascii():
            return Malformed(f"text field {len(texts) + 1} is not ASCII", b"")
        texts.append(raw.decode("ascii"))
    if at != len(payload):
        return Malformed(f"{len(payload) - at} bytes after the last text field", b"")
    return texts
