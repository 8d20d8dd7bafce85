"""Refuse a capture by name before any matching: what the face module reported about it.

The capture's facts are the face camera's ``capture`` result (drivers/face_camera): liveness
with its score and quality (face count, sharpness, pose). Order matters only for the name
given: the face count first (liveness is about a face: with none there is nothing to be live),
then liveness (a printed photo is refused as ``not_live`` whatever its quality), then quality.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from branchline.common.errors import InvalidArgument
from branchline.server.faces.settings import FaceSettings

LIVENESS_VALUES = ("live", "not_live", "unavailable")


@dataclass(frozen=True)
class FaceCapture:
    jpeg: bytes
    liveness: str
    liveness_score: float | None
    # None: the camera does not report it (a plain UVC camera); the server's own detector
    # still counts faces before any matching.
    face_count: int | None
    sharpness: float | None
    yaw_deg: float | None
    pitch_deg: float | None


@dataclass(frozen=True)
class Refusal:
    reason: str  # stable: not_live, liveness_unavailable, ... (see refuse_capture)
    message: str


def _number(result: Mapping[str, Any], key: str, field: str) -> float:
    value = result.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgument(f"{field}.{key}", f"must be a number, got {type(value).__name__}")
    return float(value)


def _optional(result: Mapping[str, Any], key: str, field: str) -> float | None:
    value = result.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgument(f"{field}.{key}", f"must be a number, got {type(value).__name__}")
    return float(value)


def capture_from_result(result: Mapping[str, Any], field: str = "capture") -> FaceCapture:
    """A face camera ``capture`` result as a FaceCapture; bad fields are named."""
    liveness = result.get("liveness")
    if liveness not in LIVENESS_VALUES:
        raise InvalidArgument(
            f"{field}.liveness", f"must be one of {', '.join(LIVENESS_VALUES)}, got {liveness!r}"
        )
    score = None if liveness == "unavailable" else _number(result, "liveness_score", field)
    count = result.get("face_count")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
        raise InvalidArgument(f"{field}.face_count", f"must be a count, got {count!r}")
    try:
        jpeg = base64.b64decode(str(result.get("jpeg_b64", "")), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidArgument(f"{field}.jpeg_b64", "is not base64") from None
    return FaceCapture(
        jpeg=jpeg,
        liveness=str(liveness),
        liveness_score=score,
        face_count=count,
        sharpness=_optional(result, "sharpness", field),
        yaw_deg=_optional(result, "yaw_deg", field),
        pitch_deg=_optional(result, "pitch_deg", field),
    )


def refuse_capture(capture: FaceCapture, settings: FaceSettings) -> Refusal | None:
    """Why this capture may not be compared, or None when it may."""
    if capture.face_count == 0:
        return Refusal("no_face", "no face in the capture")
    if capture.face_count is not None and capture.face_count > 1:
        return Refusal("several_faces", f"{capture.face_count} faces in the capture, one wanted")
    if capture.liveness == "unavailable":
        return Refusal(
            "liveness_unavailable", "the camera cannot tell a live face (no infrared liveness)"
        )
    if capture.liveness == "not_live":
        return Refusal("not_live", "the face is not live (a photo, screen or mask)")
    if capture.liveness_score is None or capture.liveness_score < settings.min_liveness_score:
        return Refusal(
            "liveness_score_low",
            f"liveness score {capture.liveness_score} below {settings.min_liveness_score}",
        )
    if capture.sharpness is not None and capture.sharpness < settings.min_sharpness:
        return Refusal(
            "low_sharpness", f"sharpness {capture.sharpness:.2f} below {settings.min_sharpness}"
        )
    yaw, pitch = capture.yaw_deg or 0.0, capture.pitch_deg or 0.0  # None: not reported
    if abs(yaw) > settings.max_yaw_deg or abs(pitch) > settings.max_pitch_deg:
        return Refusal(
            "pose",
            f"head turned (yaw {yaw:g}°, pitch {pitch:g}°): look at the camera",
        )
    return None
