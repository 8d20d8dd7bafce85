"""One face decision: a capture against an enrolled face, with everything an audit needs.

``enrol`` turns a purchaser's enrolled image into a descriptor once (staff enrol or replace
it); ``verify`` judges a capture: the module's facts first (``checks.refuse_capture``), then
the server's own detector (exactly one face, big enough), then the distance against the
threshold. A refused or unmatched capture is a decision, not an error: the sale counts it as
an attempt. Bad input (not an image, a truncated JPEG, huge dimensions) raises
InvalidArgument naming the field.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from branchline.common.errors import InvalidArgument
from branchline.server.faces.checks import FaceCapture, Refusal, refuse_capture
from branchline.server.faces.images import decode_image
from branchline.server.faces.matcher import Descriptor, FaceBox, FaceMatcher, Pixels
from branchline.server.faces.settings import FaceSettings


@dataclass(frozen=True)
class Enrolment:
    descriptor: Descriptor
    image_sha256: str
    backend: str


@dataclass(frozen=True)
class FaceDecision:
    outcome: str  # match, no_match, refused
    reason: str  # "" for match / no_match; the refusal's name otherwise
    message: str
    distance: float | None
    threshold: float
    liveness: str
    liveness_score: float | None
    capture_sha256: str
    enrolled_sha256: str
    backend: str

    @property
    def matched(self) -> bool:
        return self.outcome == "match"

    def audit(self) -> dict[str, Any]:
        """The record kept for audit: scores and hashes, never the images."""
        return {
            "outcome": self.outcome,
            "reason": self.reason,
            "distance": None if self.distance is None else round(self.distance, 4),
            "threshold": self.threshold,
            "liveness": self.liveness,
            "liveness_score": self.liveness_score,
            "capture_sha256": self.capture_sha256,
            "enrolled_sha256": self.enrolled_sha256,
            "backend": self.backend,
        }


def _one_face(matcher: FaceMatcher, pixels: Pixels, settings: FaceSettings) -> FaceBox | Refusal:
    faces = matcher.find_faces(pixels)
    if not faces:
        return Refusal("no_face", "no face found in the image")
    if len(faces) > 1:
        return Refusal("several_faces", f"{len(faces)} faces found in the image, one wanted")
    if min(faces[0].width, faces[0].height) < settings.min_face_px:
        return Refusal(
            "face_too_small",
            f"the face is {faces[0].width} px wide, at least {settings.min_face_px} wanted",
        )
    return faces[0]


def enrol(matcher: FaceMatcher, image: bytes, settings: FaceSettings) -> Enrolment:
    """A purchaser's enrolled image as a descriptor; one clear face or InvalidArgument."""
    pixels = decode_image("enrolled_image", image, settings)
    face = _one_face(matcher, pixels, settings)
    if isinstance(face, Refusal):
        raise InvalidArgument("enrolled_image", face.message, reason=face.reason)
    return Enrolment(
        matcher.describe(pixels, face), hashlib.sha256(image).hexdigest(), matcher.name
    )


def verify(
    matcher: FaceMatcher, capture: FaceCapture, enrolled: Enrolment, settings: FaceSettings
) -> FaceDecision:
    def decision(outcome: str, reason: str, message: str, distance: float | None) -> FaceDecision:
        return FaceDecision(
            outcome=outcome,
            reason=reason,
            message=message,
            distance=distance,
            threshold=settings.threshold,
            liveness=capture.liveness,
            liveness_score=capture.liveness_score,
            capture_sha256=hashlib.sha256(capture.jpeg).hexdigest(),
            enrolled_sha256=enrolled.image_sha256,
            backend=matcher.name,
        )

    if enrolled.backend != matcher.name:
        raise InvalidArgument(
            "enrolled",
            f"was made by {enrolled.backend}, this matcher is {matcher.name}: enrol again",
            reason="backend_mismatch",
        )
    refusal = refuse_capture(capture, settings)  # before anything is decoded or compared
    if refusal is not None:
        return decision("refused", refusal.reason, refusal.message, None)
    pixels = decode_image("capture.image", capture.jpeg, settings)
    face = _one_face(matcher, pixels, settings)
    if isinstance(face, Refusal):
        return decision("refused", face.reason, face.message, None)
    distance = matcher.distance(matcher.describe(pixels, face), enrolled.descriptor)
    if distance < settings.threshold:
        return decision("match", "", f"same person (distance {distance:.3f})", distance)
    return decision("no_match", "", f"another person (distance {distance:.3f})", distance)
