"""The ``FaceMatcher`` interface: find faces in pixels, turn one into a descriptor, and say
how far apart two descriptors are. Backends: ``dlib_backend`` (the default)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Pixels = NDArray[np.uint8]  # H x W x 3, RGB
Descriptor = NDArray[np.float64]


@dataclass(frozen=True)
class FaceBox:
    left: int
    top: int
    width: int
    height: int


class FaceMatcher(ABC):
    # Kept with every decision, so an audit knows which model decided.
    name: str

    @abstractmethod
    def find_faces(self, pixels: Pixels) -> list[FaceBox]:
        """Every face the backend's detector finds, largest first."""

    @abstractmethod
    def describe(self, pixels: Pixels, face: FaceBox) -> Descriptor:
        """The descriptor of the face in ``face``'s box."""

    def distance(self, a: Descriptor, b: Descriptor) -> float:
        """Smaller is more alike; the threshold (``FaceSettings.threshold``) is on this."""
        return float(np.linalg.norm(a - b))
