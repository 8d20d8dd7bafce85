"""What the simulated face module sees: scenes made from real photographs.

The photographs are the test fixtures in ``tests/fixtures/faces/`` (public-domain portraits;
sources and licences in its README). A scene is what stands in front of the camera:

- ``live``: a person's photograph as the visible image; the infrared channel sees a live face.
- ``photo``: a printed photo of that person held up: the same photograph printed (white paper
  margin, the flatter contrast and warmer tone of a print, re-photographed smaller). The
  infrared channel sees paper: not live.
- ``no_face``: the background of a portrait with nobody in it.
- ``two_faces``: two people side by side.

Quality is measured on the image itself (sharpness from the edge energy); the face count and
the pose are what the scene holds, as a real module's detector would report them.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from PIL import Image, ImageEnhance, ImageFilter, ImageOps, ImageStat

PHOTO_DIR = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "faces"
# person -> photographs of them, first the one presented by default.
PEOPLE: dict[str, tuple[str, ...]] = {
    "obama": ("obama_1.jpg", "obama_2.jpg", "obama_3.jpg"),
    "biden": ("biden_1.jpg",),
}
BACKGROUND = "no_face.jpg"
SCENES = ("live", "photo", "no_face", "two_faces")
JPEG_QUALITY = 85


@dataclass(frozen=True)
class Scene:
    kind: str
    jpeg: bytes
    width: int
    height: int
    face_count: int
    live: bool
    sharpness: float


@cache
def _load(name: str) -> Image.Image:
    with Image.open(PHOTO_DIR / name) as im:
        return im.convert("RGB")


def _jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


def sharpness(image: Image.Image) -> float:
    """0..1 focus measure: the RMS of the edge image, scaled so a sharp portrait is near 1."""
    edges = image.convert("L").filter(ImageFilter.FIND_EDGES)
    rms = ImageStat.Stat(edges).rms[0]
    return max(0.0, min(1.0, rms / 40.0))


def printed(image: Image.Image) -> Image.Image:
    """The photograph as a print held up to the camera."""
    paper = ImageEnhance.Contrast(image).enhance(0.75)
    paper = ImageEnhance.Color(paper).enhance(0.8)
    r, g, b = paper.split()
    paper = Image.merge("RGB", (r.point(lambda v: min(255, v + 12)), g, b))
    paper = ImageOps.expand(paper, border=max(8, image.width // 14), fill=(246, 244, 238))
    paper = paper.resize((image.width * 3 // 4, image.height * 3 // 4), Image.Resampling.LANCZOS)
    frame = Image.new("RGB", image.size, (92, 88, 84))
    frame.paste(paper, ((image.width - paper.width) // 2, (image.height - paper.height) // 2))
    return frame


def side_by_side(left: Image.Image, right: Image.Image) -> Image.Image:
    height = min(left.height, right.height)
    a = left.resize((left.width * height // left.height, height))
    b = right.resize((right.width * height // right.height, height))
    both = Image.new("RGB", (a.width + b.width, height))
    both.paste(a, (0, 0))
    both.paste(b, (a.width, 0))
    return both


def photo_of(person: str, index: int = 0) -> Image.Image:
    return _load(PEOPLE[person][index])


def make_scene(kind: str, person: str = "", index: int = 0, other: str = "") -> Scene:
    """Build a scene; the caller has checked ``kind``, ``person``, ``index`` and ``other``."""
    if kind in ("live", "photo"):
        image = photo_of(person, index)
        if kind == "photo":
            image = printed(image)
        count, live = 1, kind == "live"
    elif kind == "two_faces":
        image = side_by_side(photo_of(person, index), photo_of(other))
        count, live = 2, True
    else:
        image, count, live = _load(BACKGROUND), 0, False
    return Scene(kind, _jpeg(image), image.width, image.height, count, live, sharpness(image))
