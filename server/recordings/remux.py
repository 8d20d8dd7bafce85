"""Make a MediaRecorder WebM seekable: remux it (no re-encoding) with PyAV.

MediaRecorder writes a live stream: no Cues (seek index) and no Duration, so players cannot
seek and do not know the length. Writing the same packets through libavformat's Matroska
muxer to a seekable file adds both.
"""

from __future__ import annotations

from pathlib import Path

import av

# Container format names for the media types recordings arrive in.
FORMATS = {"video/webm": "webm", "video/x-matroska": "matroska", "video/mp4": "mp4"}


class RemuxError(Exception):
    """The recording's media cannot be read."""


def remux(source: Path, target: Path, media_type: str) -> float:
    """Copy every packet of ``source`` into ``target`` with an index; the duration in s."""
    fmt = FORMATS.get(media_type.split(";")[0].strip(), "webm")
    try:
        with av.open(str(source)) as inp, av.open(str(target), "w", format=fmt) as out:
            mapping = {}
            for stream in inp.streams:
                if stream.type in ("video", "audio"):
                    mapping[stream.index] = out.add_stream_from_template(stream)
            if not mapping:
                raise RemuxError("the recording holds no audio or video stream")
            end = 0.0
            for packet in inp.demux():
                if packet.stream.index not in mapping or packet.dts is None:
                    continue
                if packet.pts is not None and packet.time_base is not None:
                    last = float((packet.pts + (packet.duration or 0)) * packet.time_base)
                    end = max(end, last)
                packet.stream = mapping[packet.stream.index]
                out.mux(packet)
    except (av.error.FFmpegError, ValueError) as exc:
        raise RemuxError(str(exc)) from None
    return end
