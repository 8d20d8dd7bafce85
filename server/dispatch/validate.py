"""Field checks: each raises InvalidArgument naming the field (as data and as the message's
first word) and what was wrong, repeating at most a short piece of what was sent."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from branchline.common.errors import MAX_ID, InvalidArgument, check_text, echo

MAX_TITLE = 200
MAX_NAME = 200
MAX_NOTE = 4000
MAX_REQUEST_ID = 128
MAX_CUSTOMER_REF = 128
MAX_FIELDS = 64
MAX_FIELD_KEY = 64
MAX_FIELD_VALUE = 2000
MAX_REASON = 1000
MAX_CONTENT_TYPE = 100
MAX_WAIT_SECONDS = 24 * 3600
MAX_SKILLS = 32

# Ids become parts of file names and URNs elsewhere: keep them plain.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_SKILL = re.compile(r"[a-z][a-z0-9_]{0,63}")
_CONTENT_TYPE = re.compile(r"[a-z0-9][a-z0-9.+-]*/[a-z0-9][a-z0-9.+-]*", re.IGNORECASE)
_SHA256 = re.compile(r"[0-9a-f]{64}")


def required(field: str, value: str, hint: str = "") -> None:
    if not value:
        raise InvalidArgument(field, f"must not be empty{hint}", reason="required")


def ident(field: str, value: str) -> str:
    required(field, value)
    check_text(field, value, max_len=MAX_ID)
    if not _ID.fullmatch(value):
        raise InvalidArgument(
            field,
            f"{echo(value)} is not an id (ASCII letters, digits, '_', '.', '-', "
            "at most 64, starting with a letter or digit)",
            reason="malformed",
        )
    return value


def skill(field: str, value: str) -> str:
    required(field, value)
    check_text(field, value, max_len=MAX_ID)
    if not _SKILL.fullmatch(value):
        raise InvalidArgument(
            field,
            f"{echo(value)} is not a business type (lower-case letters, digits "
            "and '_', starting with a letter, at most 64)",
            reason="malformed",
        )
    return value


def skills(field: str, values: Iterable[str]) -> tuple[str, ...]:
    out = sorted({skill(f"{field}[{i}]", v) for i, v in enumerate(values)})
    if len(out) > MAX_SKILLS:
        raise InvalidArgument(field, f"at most {MAX_SKILLS} skills", reason="too_many")
    return tuple(out)


def text(
    field: str, value: str, limit: int, *, required: bool = False, secret: bool = False
) -> str:
    """``secret``: text that may hold a card number by mistake (a device's detail), never
    repeated in the error."""
    if required and not value.strip():
        raise InvalidArgument(field, "must not be empty", reason="required")
    if secret:
        return bounded(field, value, limit)
    return check_text(field, value, max_len=limit, required=False)


def bounded(field: str, value: str, limit: int) -> str:
    """``value`` within ``limit`` characters; the error repeats none of it."""
    if len(value) > limit:
        raise InvalidArgument(
            field, f"is {len(value)} characters, at most {limit} allowed", reason="too_long"
        )
    return value


def fields_map(field: str, values: Mapping[str, str], limit: int = MAX_FIELDS) -> dict[str, str]:
    if len(values) > limit:
        raise InvalidArgument(field, f"at most {limit} entries", reason="too_many")
    for key, value in values.items():
        if not key or len(key) > MAX_FIELD_KEY:
            raise InvalidArgument(
                field,
                f"key {echo(key)} must be 1 to {MAX_FIELD_KEY} characters",
                reason="malformed",
            )
        # A device's field may hold a card number by mistake: never repeated.
        bounded(f"{field}[{key}]", value, MAX_FIELD_VALUE)
    return dict(values)


def material_name(field: str, value: str) -> str:
    text(field, value, MAX_NAME, required=True)
    if "/" in value or "\\" in value or value in (".", "..") or not value.isprintable():
        raise InvalidArgument(field, f"{echo(value)} must be a plain file name", reason="malformed")
    return value


def content_type(field: str, value: str) -> str:
    required(field, value, " (e.g. image/jpeg)")
    check_text(field, value, max_len=MAX_CONTENT_TYPE)
    if not _CONTENT_TYPE.fullmatch(value):
        raise InvalidArgument(
            field, f"{echo(value)} is not a media type like image/jpeg", reason="malformed"
        )
    return value.lower()


def sha256_hex(field: str, value: str) -> str:
    if not _SHA256.fullmatch(value):
        raise InvalidArgument(field, "expected 64 lower-case hex digits", reason="malformed")
    return value


def wait_seconds(field: str, value: int) -> int:
    if value <= 0 or value > MAX_WAIT_SECONDS:
        raise InvalidArgument(
            field, f"must be 1 to {MAX_WAIT_SECONDS} seconds for a wait", reason="out_of_range"
        )
    return value


def one_of(field: str, value: str, allowed: Iterable[str], what: str = "must be one of") -> str:
    choices = tuple(allowed)
    if value not in choices:
        raise InvalidArgument(field, f"{what} {', '.join(choices)}", reason="unknown_value")
    return value
