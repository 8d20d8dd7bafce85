"""The one "this input is bad" result every card-reader decoder returns instead of raising."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Malformed:
    """Input that could not be decoded: ``reason`` says what was wrong, ``raw`` is the input.

    Decoders return this rather than raising because their input comes from a serial line or
    a chip card, where bad bytes are an expected event to log and recover from, not a bug.
    """

    reason: str
    raw: bytes = b""
