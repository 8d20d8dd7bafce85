"""The one filter between the kiosk session and the page: nothing secret leaves the agent.

Every frame the page gets passes ``scrub``. It drops values under secret keys (PAN, PIN,
PIN block, KSN, track data, session token or handle), masks any digit run that is a card
number (not inside a recording's SHA-256: ``mask_card_numbers``), drops magnetic track
data, and removes the current session's own secrets wherever they appear. Anything it had to change is reported, because it means a screen was built
with something it should never have held.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from typing import Any

from branchline.common.logs import log_event
from branchline.common.redaction import SENSITIVE_KEYS, mask_card_numbers

log = logging.getLogger("branchline.agent.kiosk")

SECRET_KEYS = SENSITIVE_KEYS | {
    "pan",
    "ksn",
    "token",
    "session_token",
    "session_id",
    "digit",
    "digits_entered",
}
DROPPED = "[dropped]"
_TRACK1 = re.compile(r"%B\d{12,19}\^[^?]{0,80}\?")
_TRACK2 = re.compile(r";\d{12,19}=[\dD]{0,40}\?")
_DIGIT_RUN = re.compile(r"(?<!\d)\d{12,19}(?!\d)")


def _scrub_text(text: str, secrets: tuple[str, ...], found: list[str], where: str) -> str:
    original = text
    text = _TRACK1.sub(DROPPED, text)
    text = _TRACK2.sub(DROPPED, text)
    text = mask_card_numbers(text, _DIGIT_RUN)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, DROPPED)
    if text != original:
        found.append(where)
    return text


def _scrub(value: Any, secrets: tuple[str, ...], found: list[str], where: str) -> Any:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            path = f"{where}.{key}" if where else str(key)
            if str(key).lower() in SECRET_KEYS:
                found.append(path)
                continue
            out[str(key)] = _scrub(item, secrets, found, path)
        return out
    if isinstance(value, list | tuple):
        return [_scrub(item, secrets, found, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, str):
        return _scrub_text(value, secrets, found, where)
    return value


def scrub(frame: dict[str, Any], secrets: Iterable[str] = ()) -> tuple[dict[str, Any], list[str]]:
    """(the frame safe to send, the paths that had to be changed)."""
    live_secrets = tuple(s for s in secrets if s and len(s) >= 6)
    found: list[str] = []
    clean = _scrub(frame, live_secrets, found, "")
    return clean, found


def encode(frame: dict[str, Any], secrets: Iterable[str] = ()) -> str:
    """The frame as the JSON text the page gets, scrubbed; a scrub is logged as an error."""
    clean, found = scrub(frame, secrets)
    if found:
        log_event(log, "kiosk_frame_scrubbed", logging.ERROR, fields=",".join(found)[:300])
    return json.dumps(clean, ensure_ascii=False, separators=(",", ":"))
