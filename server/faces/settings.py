"""Per-deployment face-verification settings, validated once when read."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from branchline.common.errors import InvalidArgument

# dlib's own figure for its ResNet model: two images of one person are at a Euclidean
# distance below 0.6 (99.38% on LFW). docs/faces.md has the distances on our fixtures.
DEFAULT_THRESHOLD = 0.6


@dataclass(frozen=True)
class FaceSettings:
    # Same person when the descriptor distance is below this. Lower is stricter.
    threshold: float = DEFAULT_THRESHOLD
    # The module's liveness score a live capture must reach, besides being reported live.
    min_liveness_score: float = 0.5
    # The module's sharpness (0..1) a capture must reach.
    min_sharpness: float = 0.2
    # Head turned further than this (degrees) is refused: the encoder wants a frontal face.
    max_yaw_deg: float = 25.0
    max_pitch_deg: float = 20.0
    # Images: bytes and pixels a caller may send (the decoder allocates width*height*3).
    max_image_bytes: int = 2 * 1024 * 1024
    max_pixels: int = 12_000_000
    # Faces smaller than this (pixels, the detector's box side) are too far for a decision.
    min_face_px: int = 60


# option -> (lowest, highest) accepted
BOUNDS: dict[str, tuple[float, float]] = {
    "threshold": (0.2, 1.0),
    "min_liveness_score": (0.0, 1.0),
    "min_sharpness": (0.0, 1.0),
    "max_yaw_deg": (0.0, 90.0),
    "max_pitch_deg": (0.0, 90.0),
    "max_image_bytes": (1024, 64 * 1024 * 1024),
    "max_pixels": (10_000, 100_000_000),
    "min_face_px": (20, 2000),
}


def read_face_settings(table: Mapping[str, Any], prefix: str = "faces") -> FaceSettings:
    """Settings from a config table; every unknown option or bad value is named."""
    known = {f.name: f for f in fields(FaceSettings)}
    values: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}.{key}"
        if key not in known:
            raise InvalidArgument(name, f"unknown option; known: {', '.join(known)}")
        wants_int = known[key].type == "int"
        if isinstance(value, bool) or not isinstance(value, int if wants_int else int | float):
            kind = "an integer" if wants_int else "a number"
            raise InvalidArgument(name, f"must be {kind}, got {type(value).__name__}")
        low, high = BOUNDS[key]
        if not low <= value <= high:
            raise InvalidArgument(name, f"must be {low:g} to {high:g}, got {value}")
        values[key] = value
    return FaceSettings(**values)
