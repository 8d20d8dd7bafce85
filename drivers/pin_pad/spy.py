"""The PIN pad's traffic for ``branchline-diag spy``, with its secrets blanked."""

from __future__ import annotations

from collections.abc import Callable

from branchline.drivers.pin_pad import protocol as p


class SpyRedactor:
    """Sits between the transport and the owner's spy tap and blanks secrets frame by frame."""

    def __init__(self, forward: Callable[[str, bytes], None]) -> None:
        self._forward = forward
        self._decoders: dict[str, p.FrameDecoder] = {}

    def tap(self, direction: str, data: bytes) -> None:
        decoder = self._decoders.setdefault(direction, p.FrameDecoder())
        for item in decoder.feed(data):
            if isinstance(item, p.Frame):
                frame = p.redact_frame(item)
                self._forward(direction, p.encode_frame(frame.seq, frame.cmd, frame.payload))
            else:
                self._forward(direction, item.raw)
