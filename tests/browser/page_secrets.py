"""What a kiosk page must never receive, found in everything it did receive."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator

from branchline.common.paycrypto import encode_format0
from tests.browser.kiosk_support import Received
from tests.integration.pin_support import PIN
from tests.integration.tube_support import PAN, PAN2

# A session token is base64url JSON claims and a signature: "eyJ..." "." "...".
SESSION_TOKEN = re.compile(r"eyJ[A-Za-z0-9_=-]{16,}(?:\.[A-Za-z0-9_=-]{16,})?")
# PIN blocks (16 hex), KSNs (20, 24) and clear keys up to triple-length DES (48); a
# recording's SHA-256 (64, public: it is printed in the e-journal) is not one of them.
HEX_RUN = re.compile(r"(?<![0-9A-Za-z])[0-9A-Fa-f]{16,48}(?![0-9A-Za-z])")
DIGIT_RUN = re.compile(r"(?<!\d)\d{13,19}(?!\d)")
# A SHA-256 (a recording's, public): its hex may hold a Luhn-valid run of 13-19 digits.
SHA256 = re.compile(r"(?<![0-9A-Za-z])[0-9a-f]{64}(?![0-9A-Za-z])")


def luhn(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


SECRET_KEYS = {
    "pan", "pin", "pin_block", "ksn", "track", "track1", "track2", "track3",
    "session_token", "session_id", "token",
}  # fmt: skip


def all_keys(value: object) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key).lower()
            yield from all_keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from all_keys(item)


def _signalling(frame: str) -> bool:
    return frame.startswith(('{"type":"call_signal"', '{"type":"desk_signal"'))


def secrets_in(received: Received) -> list[str]:
    """What the page received that it never may: a full card number (any Luhn-valid run),
    the test PIN, track data, a PIN block or KSN-like hex run, a session token, or a value
    under a secret's key. Empty when clean."""
    found: list[str] = []
    # A video call's or the back office video's signalling (the browsers' SDP and ICE
    # candidates, relayed opaquely) is
    # full of random digit and hex runs (session ids, fingerprints, SSRCs): the runs and PIN
    # heuristics skip it; the exact card numbers are still looked for in it.
    with_signals = received.everything()
    received = Received([f for f in received.frames if not _signalling(f)], received.responses)
    frames = "\n".join(received.frames)
    everything = received.everything()
    for pan in (PAN, PAN2):
        if pan in with_signals and pan not in everything:
            found.append(f"full card number {pan[:6]}... in a call's signalling")
        if pan in everything:
            found.append(f"full card number {pan[:6]}...")
        if f";{pan}=" in everything or f"%B{pan}^" in everything:
            found.append("track data")
        if "=" + pan[-4:] in frames:
            found.append("a track 2 tail")
        if encode_format0(PIN, pan).hex().upper() in everything.upper():
            found.append("a clear PIN block")
    found += [
        f"a card-like number {run[:6]}..."
        for run in DIGIT_RUN.findall(SHA256.sub("", everything))
        if luhn(run)
    ]
    if PIN in everything:
        found.append("the PIN's digits")
    found += [f"hex run {run[:6]}... (PIN block or KSN?)" for run in HEX_RUN.findall(frames)]
    for token in SESSION_TOKEN.findall(everything):
        body = token.split(".")[0]
        try:
            claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        except ValueError:
            continue
        if isinstance(claims, dict) and "c" in claims:
            found.append("a session token")
    for frame in received.frames:
        try:
            message = json.loads(frame)
        except ValueError:
            continue
        found += [f"key {key!r}" for key in set(all_keys(message)) & SECRET_KEYS]
    return found
