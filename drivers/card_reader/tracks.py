"""Magnetic-stripe track 1 and track 2 of financial cards (ISO/IEC 7813).

Track 1 (IATA, 6-bit alphanumeric, at most 79 characters)::

    % B PAN(up to 19 digits) ^ NAME(2-26) ^ YYMM SSS DISCRETIONARY ?

Track 2 (ABA, 4-bit numeric, at most 40 characters)::

    ; PAN(up to 19 digits) = YYMM SSS DISCRETIONARY ?

An absent expiry date or service code is written as a field separator in its place (so
``^^`` / ``==``). A reader may pass on the longitudinal redundancy character after the end
sentinel; one such character is accepted and ignored, because readers compute it over the
encoded bit patterns, which the ASCII text no longer carries. Parsers never raise: bad input
is returned as ``Malformed`` naming the problem.
"""

from __future__ import annotations

from dataclasses import dataclass

from branchline.drivers.malformed import Malformed

TRACK1_MAX = 79
TRACK2_MAX = 40
_PAN_MIN, _PAN_MAX = 8, 19  # ISO/IEC 7812-1
_NAME_MIN, _NAME_MAX = 2, 26
# Track 1 is 6-bit: ASCII 0x20..0x5F, less the sentinels. Track 2 is 4-bit (0x30..0x3F), of
# which a financial card uses only the digits and the field separator between the sentinels.
_T1_CHARS = frozenset(chr(c) for c in range(0x20, 0x60)) - {"%", "?"}
_T2_CHARS = frozenset("0123456789=")


@dataclass(frozen=True)
class Track1:
    pan: str
    name: str
    expiry: str | None  # "YYMM"
    service_code: str | None
    discretionary: str = ""

    @property
    def expiry_year_month(self) -> tuple[int, int] | None:
        return _year_month(self.expiry)

    @property
    def surname(self) -> str:
        """ISO 7813 names are ``SURNAME/GIVEN NAMES.TITLE``."""
        return self.name.split("/", 1)[0].strip()

    @property
    def given_names(self) -> str:
        rest = self.name.split("/", 1)[1] if "/" in self.name else ""
        return rest.split(".", 1)[0].strip()


@dataclass(frozen=True)
class Track2:
    pan: str
    expiry: str | None  # "YYMM"
    service_code: str | None
    discretionary: str = ""

    @property
    def expiry_year_month(self) -> tuple[int, int] | None:
        return _year_month(self.expiry)


def _year_month(expiry: str | None) -> tuple[int, int] | None:
    if expiry is None:
        return None
    return 2000 + int(expiry[:2]), int(expiry[2:])


def luhn_valid(pan: str) -> bool:
    """The ISO/IEC 7812 (Luhn) check digit of a PAN is right."""
    if not pan.isascii() or not pan.isdigit():
        return False
    total = 0
    for index, char in enumerate(reversed(pan)):
        digit = int(char)
        if index % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _text(track: str | bytes) -> tuple[str, bytes]:
    """The track as text plus the raw bytes to quote in a Malformed."""
    if isinstance(track, bytes):
        return track.decode("latin-1"), track
    return track, track.encode("utf-8", "replace")


def _body(
    text: str, raw: bytes, start: str, maximum: int, charset: frozenset[str]
) -> str | Malformed:
    """Strip sentinels (and an optional LRC) after checking length and character set."""
    if not text.startswith(start):
        return Malformed(f"missing start sentinel {start!r}", raw)
    end = text.find("?")
    if end < 0:
        return Malformed("missing end sentinel '?'", raw)
    if len(text) - end - 1 > 1:
        return Malformed(f"{len(text) - end - 1} characters after the end sentinel", raw)
    if end + 1 > maximum:
        return Malformed(f"track too long: {end + 1} characters, at most {maximum}", raw)
    body = text[1:end]
    bad = sorted({c for c in body if c not in charset})
    if bad:
        return Malformed(f"characters not allowed on this track: {''.join(bad)!r}", raw)
    return body


def _pan(pan: str, raw: bytes) -> Malformed | None:
    if not (pan.isascii() and pan.isdigit()):
        return Malformed(f"PAN {pan!r} is not all digits", raw)
    if not _PAN_MIN <= len(pan) <= _PAN_MAX:
        return Malformed(f"PAN has {len(pan)} digits, expected {_PAN_MIN}..{_PAN_MAX}", raw)
    return None


def _tail(tail: str, separator: str, raw: bytes) -> tuple[str | None, str | None, str] | Malformed:
    """Split ``YYMM SSS discretionary``, either field possibly replaced by the separator."""
    expiry: str | None = None
    if tail.startswith(separator):
        tail = tail[1:]
    else:
        expiry, tail = tail[:4], tail[4:]
        if len(expiry) < 4 or not (expiry.isascii() and expiry.isdigit()):
            return Malformed(f"expiry date {expiry!r} is not YYMM", raw)
        if not 1 <= int(expiry[2:]) <= 12:
            return Malformed(f"expiry date {expiry!r} has month {expiry[2:]}", raw)
    service: str | None = None
    if tail.startswith(separator):
        tail = tail[1:]
    else:
        service, tail = tail[:3], tail[3:]
        if len(service) < 3 or not (service.isascii() and service.isdigit()):
            return Malformed(f"service code {service!r} is not three digits", raw)
    if separator in tail:
        return Malformed(f"unexpected field separator {separator!r} in discretionary data", raw)
    return expiry, service, tail


def parse_track1(track: str | bytes) -> Track1 | Malformed:
    text, raw = _text(track)
    body = _body(text, raw, "%", TRACK1_MAX, _T1_CHARS)
    if isinstance(body, Malformed):
        return body
    if not body.startswith("B"):
        return Malformed(f"format code {body[:1]!r}, expected 'B' (financial)", raw)
    fields = body[1:].split("^", 2)
    if len(fields) != 3:
        return Malformed("expected PAN ^ NAME ^ data: field separator '^' missing", raw)
    pan, name, tail = fields
    problem = _pan(pan, raw)
    if problem:
        return problem
    if not _NAME_MIN <= len(name) <= _NAME_MAX:
        return Malformed(f"name has {len(name)} characters, expected {_NAME_MIN}..{_NAME_MAX}", raw)
    rest = _tail(tail, "^", raw)
    if isinstance(rest, Malformed):
        return rest
    return Track1(pan, name.rstrip(), *rest)


def parse_track2(track: str | bytes) -> Track2 | Malformed:
    text, raw = _text(track)
    body = _body(text, raw, ";", TRACK2_MAX, _T2_CHARS)
    if isinstance(body, Malformed):
        return body
    if "=" not in body:
        return Malformed("expected PAN = data: field separator '=' missing", raw)
    pan, tail = body.split("=", 1)
    problem = _pan(pan, raw)
    if problem:
        return problem
    rest = _tail(tail, "=", raw)
    if isinstance(rest, Malformed):
        return rest
    return Track2(pan, *rest)


def encode_track1(track: Track1) -> str:
    """Track 1 text with sentinels (no LRC). Raises ValueError when a field is invalid."""
    expiry = track.expiry if track.expiry is not None else "^"
    service = track.service_code if track.service_code is not None else "^"
    text = f"%B{track.pan}^{track.name}^{expiry}{service}{track.discretionary}?"
    return _checked(text, parse_track1(text), track)


def encode_track2(track: Track2) -> str:
    """Track 2 text with sentinels (no LRC). Raises ValueError when a field is invalid."""
    expiry = track.expiry if track.expiry is not None else "="
    service = track.service_code if track.service_code is not None else "="
    text = f";{track.pan}={expiry}{service}{track.discretionary}?"
    return _checked(text, parse_track2(text), track)


def _checked(text: str, parsed: Track1 | Track2 | Malformed, wanted: Track1 | Track2) -> str:
    # Encoding by re-parsing keeps one set of rules for both directions.
    if isinstance(parsed, Malformed):
        raise ValueError(parsed.reason)
    if parsed != wanted:
        raise ValueError(f"fields do not survive encoding: {wanted!r} reads back as {parsed!r}")
    return text
