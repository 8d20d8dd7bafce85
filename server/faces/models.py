"""Find the dlib model files of ``face_recognition_models`` without importing it.

Its ``__init__`` imports ``pkg_resources`` (gone from recent setuptools); the files are
plain data in its ``models/`` folder, found from the package's spec.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from branchline.common.errors import Unavailable

PACKAGE = "face_recognition_models"
LANDMARKS_5 = "shape_predictor_5_face_landmarks.dat"
RESNET = "dlib_face_recognition_resnet_model_v1.dat"


def model_path(filename: str, package: str = PACKAGE) -> Path:
    spec = importlib.util.find_spec(package)  # finds, does not import
    if spec is None or not spec.submodule_search_locations:
        raise Unavailable(f"face models: package {package!r} is not installed")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "models" / filename
        if path.is_file():
            return path
    raise Unavailable(f"face models: {filename} is not in package {package!r}")
