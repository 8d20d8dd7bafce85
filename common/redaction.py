"""The one redaction rule every Branchline process applies to logs, errors and gRPC details.

- PANs (13-19 digit runs passing the Luhn check) are masked to first 6 / last 4.
- Magnetic track data (``%B...?`` track 1, ``;PAN=...?`` track 2) is dropped.
- Values under sensitive keys (pin_block, track1/2/3, pin, pan, key material) are dropped
  from structured log fields.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_TRACK1 = re.compile(r"%B\d{12,19}\^[^?]{0,80}\?")
_TRACK2 = re.compile(r";\d{12,19}=[\dD]{0,40}\?")
_DIGIT_RUN = re.compile(r"(?<!\d)\d{13,19}(?!\d)")

SENSITIVE_KEYS = frozenset(
    {
        "pin",
        "pin_block",
        "pinblock",
        "track1",
        "track2",
        "track3",
        "tracks",
        "key",
        "ipek",
        "bdk",
        "clear_key",
        "cvv",
        "cvc",
    }
)


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def mask_pan(pan: str) -> str:
    """``4012345678909`` -> ``401234***8909`` (first 6, last 4 kept)."""
    if len(pan) < 11:
        return "*" * len(pan)
    return pan[:6] + "*" * (len(pan) - 10) + pan[-4:]


def _mask_match(m: re.Match[str]) -> str:
    run = m.group(0)
    return mask_pan(run) if luhn_ok(run) else run


def redact_text(text: str) -> str:
    text = _TRACK1.sub("[track1 dropped]", text)
    text = _TRACK2.sub("[track2 dropped]", text)
    return _DIGIT_RUN.sub(_mask_match, text)


def redact_value(key: str, value: Any) -> Any:
    if key.lower() in SENSITIVE_KEYS:
        return "[dropped]"
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return redact_fields(value)
    if isinstance(value, list | tuple):
        return [redact_value(key, v) for v in value]
    return value


def redact_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {k: redact_value(k, v) for k, v in fields.items()}
