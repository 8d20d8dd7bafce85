"""Customer sessions: what a verified card + PIN lets a terminal do next.

A session is a signed, self-contained token (claims + HMAC-SHA-256), so every replica can
check it without shared state and a server restart does not end it. It is bound to the
terminal that verified the PIN and to the card, and expires after ``ttl``. The key is derived
from the PAN-token key (one secret file to guard, not two) under its own label:
``CustomerSessions(tokenizer.derive_key(LABEL))``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from branchline.common.errors import PermissionDenied

LABEL = b"branchline customer session v1"
DEFAULT_TTL = timedelta(minutes=10)
MAX_TOKEN = 1024


class SessionRefused(PermissionDenied):
    """The session token is absent, forged, expired, or belongs to another terminal.

    ``code`` (the rule: ``session_required``, ``session_invalid``, ``session_expired``,
    ``session_other_terminal``) is the stable reason; ``field`` the token's path."""

    def __init__(self, code: str, message: str, *, field: str = "session_token") -> None:
        super().__init__(message, rule=code, field=field)


@dataclass(frozen=True)
class SessionClaims:
    terminal_id: str
    card_token: str
    customer_id: str
    expires_at: datetime


class CustomerSessions:
    def __init__(self, key: bytes, ttl: timedelta = DEFAULT_TTL) -> None:
        if len(key) < 16:
            raise ValueError("session key: at least 16 bytes")
        self._key = key
        self.ttl = ttl

    def issue(self, terminal_id: str, card_token: str, customer_id: str, now: datetime) -> str:
        claims = {
            "t": terminal_id,
            "c": card_token,
            "u": customer_id,
            "e": int((now + self.ttl).timestamp()),
        }
        body = base64.urlsafe_b64encode(json.dumps(claims, sort_keys=True).encode()).decode()
        return f"{body}.{self._sign(body)}"

    def check(self, token: str, terminal_id: str, now: datetime) -> SessionClaims:
        if not token:
            raise SessionRefused("session_required", "session_token: sign in with card and PIN")
        if len(token) > MAX_TOKEN or token.count(".") != 1:
            raise SessionRefused("session_invalid", "session_token: not a session token")
        body, signature = token.split(".")
        if not hmac.compare_digest(signature, self._sign(body)):
            raise SessionRefused("session_invalid", "session_token: signature does not match")
        claims = json.loads(base64.urlsafe_b64decode(body))
        if claims["t"] != terminal_id:
            raise SessionRefused(
                "session_other_terminal",
                f"session_token: issued to terminal {claims['t']!r}, not {terminal_id!r}",
            )
        expires_at = datetime.fromtimestamp(claims["e"], UTC)
        if now >= expires_at:
            raise SessionRefused(
                "session_expired", "session_token: the session has expired; sign in again"
            )
        return SessionClaims(terminal_id, claims["c"], claims["u"], expires_at)

    def _sign(self, body: str) -> str:
        return hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()
