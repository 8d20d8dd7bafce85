"""Input checks and byte helpers shared by the paycrypto modules."""

from __future__ import annotations

from collections.abc import Collection

from .errors import KeyCheckError


def _describe(lengths: Collection[int]) -> str:
    ordered = sorted(lengths)
    if len(ordered) == 1:
        return str(ordered[0])
    return ", ".join(str(n) for n in ordered[:-1]) + f" or {ordered[-1]}"


def require_key(key: object, lengths: Collection[int], what: str) -> bytes:
    """Return ``key`` as bytes, or raise naming the expected lengths (never the key)."""
    if not isinstance(key, bytes | bytearray | memoryview):
        raise KeyCheckError(f"{what} must be bytes, got {type(key).__name__}")
    data = bytes(key)
    if len(data) not in lengths:
        raise KeyCheckError(f"{what} must be {_describe(lengths)} bytes long, got {len(data)}")
    return data


def xor(left: bytes, right: bytes) -> bytes:
    """Bytewise XOR of two equal-length strings."""
    if len(left) != len(right):
        raise ValueError("xor operands differ in length")
    return bytes(a ^ b for a, b in zip(left, right, strict=True))
