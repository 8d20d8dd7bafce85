"""Decode a caller's image into RGB pixels, bounded and with clear errors.

Every refusal names ``field`` and what was wrong: not an image, not a JPEG/PNG, truncated,
too many bytes, dimensions too large (checked from the header before anything is decoded, so
a decompression bomb never allocates).
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from numpy.typing import NDArray
from PIL import Image, UnidentifiedImageError

from branchline.common.errors import InvalidArgument
from branchline.server.faces.settings import FaceSettings

FORMATS = ("JPEG", "PNG")


def decode_image(field: str, data: bytes, settings: FaceSettings) -> NDArray[np.uint8]:
    """``data`` as an H x W x 3 uint8 array; InvalidArgument naming ``field`` otherwise."""
    if not isinstance(data, bytes | bytearray):
        raise InvalidArgument(field, f"must be image bytes, not {type(data).__name__}")
    if not data:
        raise InvalidArgument(field, "is empty", reason="required")
    if len(data) > settings.max_image_bytes:
        raise InvalidArgument(
            field,
            f"is {len(data)} bytes, at most {settings.max_image_bytes} allowed",
            reason="too_large",
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=FORMATS)
    except UnidentifiedImageError:
        raise InvalidArgument(
            field, "is not an image (neither JPEG nor PNG)", reason="not_an_image"
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidArgument(field, "dimensions are too large", reason="too_large") from None
    width, height = image.size
    if width * height > settings.max_pixels:
        raise InvalidArgument(
            field,
            f"is {width}x{height} pixels, at most {settings.max_pixels} pixels allowed",
            reason="too_large",
        )
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as exc:
        # PIL says "image file is truncated" for a JPEG cut short.
        raise InvalidArgument(
            field, f"{image.format} data is damaged or truncated ({exc})", reason="bad_image"
        ) from None
    return np.asarray(image.convert("RGB"), dtype=np.uint8)
