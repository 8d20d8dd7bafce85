"""Raster bit images: GS v 0 m xL xH yL yH d1..dk (Epson ESC/POS Command Reference, "GS v 0").

``xL + xH * 256`` is the width in BYTES (8 dots each, most significant bit leftmost),
``yL + yH * 256`` the height in dots, and a 1 bit prints a dot. The reference allows
``0 <= yH <= 8``, so one command holds at most 2303 rows: taller images are sent as several
bands, one GS v 0 each, which print seamlessly one under the other.
"""

from __future__ import annotations

from enum import IntEnum

from PIL import Image

from ._codes import GS, check_range

MAX_BAND_HEIGHT = 2303  # yL + yH * 256 with yH <= 8
MAX_WIDTH_BYTES = 65535


class RasterScale(IntEnum):
    """GS v 0 m."""

    NORMAL = 0
    DOUBLE_WIDTH = 1
    DOUBLE_HEIGHT = 2
    QUADRUPLE = 3


def to_monochrome(image: Image.Image, *, dither: bool = True, threshold: int = 128) -> Image.Image:
    """A 1-bit copy of ``image``, transparent parts on white, width padded to whole bytes (white).

    ``dither`` uses Floyd-Steinberg (right for photographs); otherwise pixels darker than
    ``threshold`` print (right for logos and line art).
    """
    check_range("threshold", threshold, 0, 255)
    if image.width < 1 or image.height < 1:
        raise ValueError(f"image is empty: {image.width}x{image.height}")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    grey = image.convert("L")
    if dither:
        mono = grey.convert("1", dither=Image.Dither.FLOYDSTEINBERG)
    else:
        mono = grey.point(lambda v: 255 if v >= threshold else 0).convert(
            "1", dither=Image.Dither.NONE
        )
    padded_width = (mono.width + 7) // 8 * 8
    if padded_width != mono.width:
        canvas = Image.new("1", (padded_width, mono.height), 1)
        canvas.paste(mono, (0, 0))
        mono = canvas
    return mono


def raster_bytes(
    image: Image.Image, *, dither: bool = True, threshold: int = 128
) -> tuple[int, int, bytes]:
    """``(width_bytes, height, data)`` of ``image`` in GS v 0 bit order (1 = print a dot)."""
    mono = to_monochrome(image, dither=dither, threshold=threshold)
    return mono.width // 8, mono.height, mono.tobytes("raw", "1;I")


def raster_command(
    width_bytes: int, height: int, data: bytes, scale: RasterScale | int = RasterScale.NORMAL
) -> bytes:
    """One GS v 0 frame from ready-made raster data."""
    check_range("width in bytes", width_bytes, 1, MAX_WIDTH_BYTES)
    check_range("height", height, 1, MAX_BAND_HEIGHT)
    if len(data) != width_bytes * height:
        raise ValueError(f"raster data is {len(data)} bytes, expected {width_bytes} * {height}")
    header = bytes(
        (GS, 0x76, 0x30, RasterScale(scale).value)
        + (width_bytes & 0xFF, width_bytes >> 8, height & 0xFF, height >> 8)
    )
    return header + data


def raster_image(
    image: Image.Image,
    *,
    dither: bool = True,
    threshold: int = 128,
    scale: RasterScale | int = RasterScale.NORMAL,
    band_height: int = 1024,
) -> bytes:
    """GS v 0 frames printing ``image``: converted to 1 bit, in bands of at most ``band_height`` rows."""
    check_range("band height", band_height, 1, MAX_BAND_HEIGHT)
    width_bytes, height, data = raster_bytes(image, dither=dither, threshold=threshold)
    if width_bytes > MAX_WIDTH_BYTES:
        raise ValueError(
            f"image is {width_bytes * 8} dots wide; GS v 0 allows {MAX_WIDTH_BYTES * 8}"
        )
    out = bytearray()
    for top in range(0, height, band_height):
        rows = min(band_height, height - top)
        band = data[top * width_bytes : (top + rows) * width_bytes]
        out += raster_command(width_bytes, rows, band, scale)
    return bytes(out)
