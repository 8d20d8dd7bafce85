"""Field checks: each raises InvalidArgument naming the field and what was wrong."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from branchline.server.dispatch.model import InvalidArgument

MAX_TITLE = 200
MAX_NOTE = 4000
MAX_FIELDS = 64
MAX_FIELD_KEY = 64
MAX_FIELD_VALUE = 2000
MAX_REASON = 1000
MAX_WAIT_SECONDS = 24 * 3600
MAX_SKILLS = 32

# Ids become parts of file names and URNs elsewhere: keep them plain.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_SKILL = re.compile(r"[a-z][a-z0-9_]{0,63}")
_CONTENT_TYPE = re.compile(r"[a-z0-9][a-z0-9.+-]*/[a-z0-9][a-z0-9.+-]*", re.IGNORECASE)
_SHA256 = re.compile(r"[0-9a-f]{64}")


def ident(field: str, value: str) -> str:
    if not value:
        raise InvalidArgument(f"{field}: must not be empty")
    if not _ID.fullmatch(value):
        raise InvalidArgument(
            f"{field}: {value[:80]!r} is not an id (ASCII letters, digits, '_', '.', '-', "
            "at most 64, starting with a letter or digit)"
        )
    return value


def skill(field: str, value: str) -> str:
    if not value:
        raise InvalidArgument(f"{field}: must not be empty")
    if not _SKILL.fullmatch(value):
        raise InvalidArgument(
            f"{field}: {value[:80]!r} is not a business type (lower-case letters, digits "
            "and '_', starting with a letter, at most 64)"
        )
    return value


def skills(field: str, values: Iterable[str]) -> tuple[str, ...]:
    out = sorted({skill(f"{field}[{i}]", v) for i, v in enumerate(values)})
    if len(out) > MAX_SKILLS:
        raise InvalidArgument(f"{field}: at most {MAX_SKILLS} skills")
    return tuple(out)


def text(field: str, value: str, limit: int, *, required: bool = False) -> str:
    if required and not value.strip():
        raise InvalidArgument(f"{field}: must not be empty")
    if len(value) > limit:
        raise InvalidArgument(f"{field}: longer than {limit} characters")
    return value


def fields_map(field: str, values: Mapping[str, str]) -> dict[str, str]:
    if len(values) > MAX_FIELDS:
        raise InvalidArgument(f"{field}: at most {MAX_FIELDS} entries")
    for key, value in values.items():
        if not key or len(key) > MAX_FIELD_KEY:
            raise InvalidArgument(
                f"{field}: key {key[:80]!r} must be 1 to {MAX_FIELD_KEY} characters"
            )
        if len(value) > MAX_FIELD_VALUE:
            raise InvalidArgument(f"{field}[{key}]: longer than {MAX_FIELD_VALUE} characters")
    return dict(values)


def material_name(field: str, value: str) -> str:
    text(field, value, 200, required=True)
    if "/" in value or "\\" in value or value in (".", "..") or not value.isprintable():
        raise InvalidArgument(f"{field}: {value[:80]!r} must be a plain file name")
    return value


def content_type(field: str, value: str) -> str:
    if not value:
        raise InvalidArgument(f"{field}: must not be empty (e.g. image/jpeg)")
    if len(value) > 100 or not _CONTENT_TYPE.fullmatch(value):
        raise InvalidArgument(f"{field}: {value[:80]!r} is not a media type like image/jpeg")
    return value.lower()


def sha256_hex(field: str, value: str) -> str:
    if not _SHA256.fullmatch(value):
        raise InvalidArgument(f"{field}: expected 64 lower-case hex digits")
    return value


def wait_seconds(field: str, value: int) -> int:
    if value <= 0 or value > MAX_WAIT_SECONDS:
        raise InvalidArgument(f"{field}: must be 1 to {MAX_WAIT_SECONDS} seconds for a wait")
    return value
