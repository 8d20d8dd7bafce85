"""Real WebM test media, made with PyAV the way MediaRecorder makes it: VP8 in a live
(non-seekable) Matroska stream, so it has no Cues and no Duration, cut into chunks."""

from __future__ import annotations

import io
from fractions import Fraction

import av
from PIL import Image, ImageDraw


class _LiveSink(io.RawIOBase):
    """A write-only, non-seekable output: the muxer writes a live stream, as in a browser."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def write(self, b: bytes) -> int:  # type: ignore[override]
        self.data.extend(b)
        return len(b)


def webm_test_pattern(
    seconds: float = 3.0, fps: int = 15, size: tuple[int, int] = (160, 120)
) -> bytes:
    """A moving colour test pattern as a MediaRecorder-like WebM."""
    sink = _LiveSink()
    width, height = size
    with av.open(sink, "w", format="webm") as out:
        stream = out.add_stream("libvpx", rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, 1000)
        for i in range(int(seconds * fps)):
            img = Image.new("RGB", (width, height), ((i * 16) % 256, 64, 128))
            draw = ImageDraw.Draw(img)
            x = (i * 4) % width
            draw.rectangle((x, 10, x + 30, height - 10), fill=(255, 255, 0))
            draw.text((4, 4), f"{i:04d}", fill=(255, 255, 255))
            frame = av.VideoFrame.from_image(img)
            frame.pts = int(i * 1000 / fps)
            frame.time_base = Fraction(1, 1000)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return bytes(sink.data)


def chunks(data: bytes, size: int = 8192) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def probe(path: str) -> tuple[float, int]:
    """(container duration in s, frames decoded) after seeking to the middle and back."""
    with av.open(path) as f:
        duration = (f.duration or 0) / av.time_base
        stream = f.streams.video[0]
        assert stream.time_base is not None
        f.seek(int(duration / 2 / stream.time_base), stream=stream)
        next(f.decode(stream))
        f.seek(0, stream=stream)
        frames = sum(1 for _ in f.decode(stream))
    return duration, frames
