"""Field paths across layers: a refusal raised for an inner request, named for the outer one.

A plain function names the field of its own request (``withdrawal.amount``,
``session_token``); the caller that built that request from its own message knows which of
its fields fed it (``tube_open.asset.amount``) and re-homes the error with ``renamed``. The
field travels as data; the message's leading ``<field>:`` follows it so people read the same
path the details carry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from branchline.common.errors import DomainError

E = TypeVar("E", bound=DomainError)


def _copy(exc: E) -> E:
    # Not copy.copy: that calls __init__ again with only the message, which subclasses
    # taking other arguments (a code first) refuse.
    out = type(exc).__new__(type(exc))
    out.__dict__.update(exc.__dict__)
    out.metadata = dict(exc.metadata)
    return out


def renamed(exc: E, field: str) -> E:
    """A copy of ``exc`` naming ``field``: same class, reason and metadata."""
    out = _copy(exc)
    old = exc.field
    body = exc.message
    if old and body.startswith(f"{old}:"):
        body = body[len(old) + 1 :].lstrip()
    out.field = field
    out.message = f"{field}: {body}" if field else body
    out.args = (out.message,)
    return out


def mapped(exc: E, fields: Mapping[str, str], default: str) -> E:
    """``exc`` named for the caller's request: ``fields[exc.field]`` when the inner field is
    one the caller filled in, else ``default`` (the caller's message as a whole, the inner
    message kept whole after it)."""
    if exc.field in fields:
        return renamed(exc, fields[exc.field])
    out = _copy(exc)
    out.field = default
    out.message = f"{default}: {exc.message}" if default else exc.message
    out.args = (out.message,)
    return out
