"""The default ``FaceMatcher``: dlib's HOG face detector, its 5-point landmark model and its
ResNet face encoder (128-d descriptors, same person below 0.6), from ``dlib-bin`` with the
model files of ``face_recognition_models``. Only those two models are loaded."""

from __future__ import annotations

from pathlib import Path
from threading import Lock

import dlib
import numpy as np

from branchline.server.faces.matcher import Descriptor, FaceBox, FaceMatcher, Pixels
from branchline.server.faces.models import LANDMARKS_5, RESNET, model_path


class DlibFaceMatcher(FaceMatcher):
    name = "dlib_resnet_v1"

    def __init__(
        self,
        landmarks: Path | None = None,
        resnet: Path | None = None,
        upsample: int = 0,
    ) -> None:
        self._detector = dlib.get_frontal_face_detector()
        self._landmarks = dlib.shape_predictor(str(landmarks or model_path(LANDMARKS_5)))
        self._encoder = dlib.face_recognition_model_v1(str(resnet or model_path(RESNET)))
        # 0: faces from 80 px; each step halves that and costs about four times the time.
        self._upsample = upsample
        # dlib's models are not documented thread-safe: one call at a time per instance.
        self._lock = Lock()

    def find_faces(self, pixels: Pixels) -> list[FaceBox]:
        with self._lock:
            rects = self._detector(pixels, self._upsample)
        boxes = [FaceBox(r.left(), r.top(), r.width(), r.height()) for r in rects]
        return sorted(boxes, key=lambda b: b.width * b.height, reverse=True)

    def describe(self, pixels: Pixels, face: FaceBox) -> Descriptor:
        rect = dlib.rectangle(face.left, face.top, face.left + face.width, face.top + face.height)
        with self._lock:
            shape = self._landmarks(pixels, rect)
            vector = self._encoder.compute_face_descriptor(pixels, shape)
        return np.array(vector, dtype=np.float64)
