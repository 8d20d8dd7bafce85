"""The one redaction rule every Branchline process applies to logs, errors and gRPC details.

- PANs (13-19 digit runs passing the Luhn check) are masked to first 6 / last 4, except
  inside a SHA-256 in hex (64 hex digits standing alone: a recording's digest, an
  e-journal hash), which is public and whose digits may by chance form such a run.
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
# A SHA-256 in hex, standing alone. About 1 in 230 random digests holds a Luhn-valid run of
# 13-19 decimal digits: masked, a recording's digest in the e-journal no longer named it.
SHA256_HEX = re.compile(r"(?<![0-9A-Za-z])[0-9A-Fa-f]{64}(?![0-9A-Za-z])")

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


def mask_card_numbers(text: str, runs: re.Pattern[str] = _DIGIT_RUN) -> str:
    """Mask the Luhn-valid digit runs (``runs``) of ``text``, SHA-256 digests left whole.

    A digest is bounded by no letter or digit, so no run outside it reaches into it."""
    pieces: list[str] = []
    last = 0
    for digest in SHA256_HEX.finditer(text):
        pieces += [runs.sub(_mask_match, text[last : digest.start()]), digest.group(0)]
        last = digest.end()
    pieces.append(runs.sub(_mask_match, text[last:]))
    return "".join(pieces)


def redact_text(text: str) -> str:
    text = _TRACK1.sub("[track1 dropped]", text)
    text = _TRACK2.sub("[track2 dropped]", text)
    return mask_card_numbers(text)


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
