"""JSON for stored records: canonical text, Decimal as string, errors naming the field.

Two policies:
- ``encode_txn_data``: transaction data must be exact and must not hold card secrets. Floats
  are refused (money is Decimal, stored as its string); a clear PAN, track data, PIN or key
  material is refused (store ``pan_masked`` and the server's ``card_token`` instead).
- ``encode_fields``: e-journal fields go through the project's redaction rule first
  (``redact_fields``), so they are stored masked; floats are allowed there.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from branchline.common.redaction import SENSITIVE_KEYS, redact_fields, redact_text

from .db import CorruptRecord, JournalError


class DataError(JournalError, ValueError):
    """Data that cannot be stored; the message names the field.

    Permanent: the same data is refused every time, so a caller must not simply try the
    write again (the step runner ends the transaction instead, agent/engine_refusal.py).
    """

    @property
    def field(self) -> str:
        """The field path the message starts with ("data.hold_id"), without the value."""
        head, sep, _ = str(self).partition(": ")
        return head if sep else ""


class SensitiveData(DataError):
    """Card secrets (clear PAN, track data, PIN, keys) offered to the journal."""


# Keys never stored in transaction data, whatever the value looks like.
REFUSED_KEYS = SENSITIVE_KEYS | {"pan", "clear_pan", "track_data"}
# A server card token may be a 16-digit Luhn-valid number (network tokens are): allowed here.
DIGITS_ALLOWED_KEYS = frozenset({"card_token"})


def canonical(obj: Any) -> str:
    """One text for one value: sorted keys, no spaces, UTF-8, no NaN."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def _plain(value: Any, path: str, *, strict: bool, key: str = "") -> Any:
    """A JSON-ready copy of ``value``; ``strict``: the transaction-data policy."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise DataError(f"{path}: {value} is not a finite amount")
        return str(value)
    if isinstance(value, float):
        if strict:
            raise DataError(f"{path}: a float is not allowed (amounts must be exact): use Decimal")
        if not math.isfinite(value):
            raise DataError(f"{path}: {value} is not a finite number")
        return value
    if isinstance(value, str):
        if strict and key.lower() not in DIGITS_ALLOWED_KEYS and redact_text(value) != value:
            raise SensitiveData(
                f"{path}: looks like a clear PAN or track data; store pan_masked or card_token"
            )
        return value
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise DataError(f"{path}: key {k!r} is not a string")
            if strict and k.lower() in REFUSED_KEYS:
                raise SensitiveData(
                    f"{path}.{k}: card secrets are never journaled; store pan_masked or card_token"
                )
            out[k] = _plain(v, f"{path}.{k}", strict=strict, key=k)
        return out
    if isinstance(value, list | tuple):
        return [_plain(v, f"{path}[{i}]", strict=strict, key=key) for i, v in enumerate(value)]
    raise DataError(
        f"{path}: {type(value).__name__} cannot be stored; use str, int, bool, Decimal, list or dict"
    )


def encode_txn_data(data: Mapping[str, Any] | None, where: str) -> str:
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise DataError(f"{where}: must be a mapping, got {type(data).__name__}")
    return canonical(_plain(data, where, strict=True))


def encode_fields(fields: Mapping[str, Any] | None, where: str) -> str:
    if fields is None:
        fields = {}
    if not isinstance(fields, Mapping):
        raise DataError(f"{where}: must be a mapping, got {type(fields).__name__}")
    for k in fields:
        if not isinstance(k, str):
            raise DataError(f"{where}: key {k!r} is not a string")
    return canonical(_plain(redact_fields(fields), where, strict=False))


def decode_object(text: str, where: str) -> dict[str, Any]:
    """A stored JSON object, or ``CorruptRecord`` naming the record."""
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, TypeError) as exc:
        raise CorruptRecord(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise CorruptRecord(f"{where}: not a JSON object")
    return value
