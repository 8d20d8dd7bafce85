"""The gateway's defences: response headers, the session cookie, CSRF, rate limits.

- Headers on every response: a CSP allowing only this origin (no inline script), HSTS, no
  sniffing, no framing, no Referer (the QR's URL carries a handle), no caching.
- The session cookie is HttpOnly, Secure and SameSite=Lax (the QR opens the page by a
  top-level navigation from the camera app, which must carry the cookie).
- CSRF: state-changing requests must come from this origin (``Origin`` or
  ``Sec-Fetch-Site``) and, once paired, carry ``X-CSRF-Token``: a hash of the session token
  the page reads from ``/api/pairing``. Another site can read neither the cookie nor the
  token, and no instance needs to remember it.
- Rate limits: a token bucket per phone (client address) and per terminal; over the limit
  is answered 429 with ``Retry-After``.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from aiohttp import web

SESSION_COOKIE = "bl_session"
CSRF_HEADER = "X-CSRF-Token"
SESSION_MAX_AGE = 15 * 60
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def csrf_token(session_token: str) -> str:
    return hashlib.sha256(b"branchline-csrf:" + session_token.encode()).hexdigest()


def csrf_ok(request: web.Request, session_token: str) -> bool:
    sent = request.headers.get(CSRF_HEADER, "")
    return bool(sent) and hmac.compare_digest(sent, csrf_token(session_token))


def same_origin(request: web.Request) -> bool:
    """A state-changing request from this origin (browsers send Origin on POST)."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("Origin")
    if origin is None:
        return site is not None  # a browser that says where it comes from, without Origin
    return urlsplit(origin).netloc == request.host


def set_session_cookie(response: web.StreamResponse, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=SESSION_MAX_AGE,
        path="/",
        secure=True,
        httponly=True,
        samesite="Lax",
    )


def clear_session_cookie(response: web.StreamResponse) -> None:
    response.del_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="Lax")


@dataclass
class Bucket:
    tokens: float
    at: float


@dataclass
class RateLimiter:
    """``rate`` requests a second on average, bursts of ``burst``, per key."""

    rate: float
    burst: int
    clock: Callable[[], float] = time.monotonic
    max_keys: int = 10_000
    _buckets: dict[str, Bucket] = field(default_factory=dict)

    def take(self, key: str) -> float:
        """0 when allowed; else the seconds until a request would be."""
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._forget_full(now)
            bucket = self._buckets[key] = Bucket(float(self.burst), now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate

    def _forget_full(self, now: float) -> None:
        # Keys whose bucket has refilled carry no information: drop them first.
        full = [
            k for k, b in self._buckets.items() if b.tokens + (now - b.at) * self.rate >= self.burst
        ]
        for key in full or list(self._buckets)[: self.max_keys // 10]:
            del self._buckets[key]


def too_many(retry_after: float, what: str) -> web.HTTPTooManyRequests:
    return web.HTTPTooManyRequests(
        text=f'{{"error": "rate_limited", "message": "too many requests {what}; retry later"}}',
        content_type="application/json",
        headers={"Retry-After": str(max(1, math.ceil(retry_after)))},
    )


async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: every response, errors included, carries the headers."""
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
