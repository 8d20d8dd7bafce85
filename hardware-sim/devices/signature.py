"""The simulated customer's handwritten signature, drawn with pillow as a PNG.

The strokes come from the signer's name (the same name always signs the same way, as a
person does): a pen path across the pad's signature box, one loop per letter, with a
pressure-free 3-pixel line. 1-bit PNG, like the signature pads banks use.
"""

from __future__ import annotations

import hashlib
import io
import math
import random

from PIL import Image, ImageDraw

WIDTH, HEIGHT = 480, 160


def draw_signature(name: str) -> bytes:
    """The PNG of ``name``'s signature."""
    seed = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big")
    rng = random.Random(seed)
    image = Image.new("1", (WIDTH, HEIGHT), 1)
    pen = ImageDraw.Draw(image)
    letters = [c for c in name if not c.isspace()] or ["x"]
    step = (WIDTH - 60) / len(letters)
    points: list[tuple[float, float]] = []
    for i, letter in enumerate(letters):
        x0 = 30 + i * step
        height = 25 + (ord(letter) % 7) * 6 + rng.uniform(-4, 4)
        for t in range(12):
            angle = t / 11 * 2 * math.pi
            x = x0 + step * (t / 11) + math.sin(angle) * step * 0.25
            y = HEIGHT * 0.62 - math.sin(angle / 2) * height + rng.uniform(-2, 2)
            points.append((x, y))
    pen.line(points, fill=0, width=3, joint="curve")
    # The flourish under the name.
    pen.line(
        [(30, HEIGHT * 0.78), (WIDTH * 0.5, HEIGHT * 0.74), (WIDTH - 30, HEIGHT * 0.8)],
        fill=0,
        width=2,
    )
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()
