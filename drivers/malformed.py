"""The one "this input is bad" result every driver decoder returns instead of raising."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

# What arrived: bytes from a serial line or a chip card, or register values read over Modbus.
Raw = TypeVar("Raw", bytes, tuple[int, ...])


@dataclass(frozen=True)
class Malformed(Generic[Raw]):
    """Input that could not be decoded: ``reason`` says what was wrong, ``raw`` is the input.

    Decoders return this rather than raising because their input comes from a device line or
    a chip card, where bad bytes are an expected event to log and recover from, not a bug.
    ``raw`` stays out of the repr: it may hold track data, a PIN block or key material.
    """

    reason: str
    raw: Raw = field(repr=False)
