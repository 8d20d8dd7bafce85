"""Which image a browser shows a document's bytes as, by their first bytes (never the
uploader's word): the server says so of a task's materials, the console checks it again
on the bytes it serves."""

from __future__ import annotations

# The formats every browser decodes, by their first bytes.
IMAGE_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
)
# Enough of the bytes to tell every format above and WebP (RIFF....WEBP).
SNIFF_BYTES = 12


def image_type(data: bytes) -> str:
    """The image type the bytes are, if a browser shows it; else ""."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return next((kind for magic, kind in IMAGE_SIGNATURES if data.startswith(magic)), "")
