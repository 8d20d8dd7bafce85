"""Redaction of EPP frames for the wire spy: the exchange shows, the secrets never do."""

from __future__ import annotations

from dataclasses import replace

from branchline.drivers.pin_pad.codes import Cmd
from branchline.drivers.pin_pad.frames import Frame


def redact_frame(frame: Frame) -> Frame:
    """The frame with key material, PIN blocks and all but first 6 / last 4 PAN digits blanked,
    for ``branchline-diag spy``: the technician sees the exchange, never the secrets."""
    p = frame.payload
    if frame.cmd == Cmd.LOAD_KEY and len(p) >= 3:
        size = min(p[2], len(p) - 3)
        return replace(frame, payload=p[:3] + bytes(size) + p[3 + size :])
    if frame.cmd == Cmd.PIN_RESULT and len(p) >= 4:
        size = min(p[3], len(p) - 4)
        return replace(frame, payload=p[:4] + bytes(size) + p[4 + size :])
    if frame.cmd == Cmd.START_PIN and len(p) >= 6:
        size = min(p[5], len(p) - 6)
        pan = p[6 : 6 + size]
        masked = (
            pan[:6] + b"*" * max(0, len(pan) - 10) + pan[-4:] if len(pan) > 10 else b"*" * len(pan)
        )
        return replace(frame, payload=p[:6] + masked + p[6 + size :])
    return frame
