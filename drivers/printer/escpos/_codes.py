"""Control bytes shared by the encoder modules (Epson ESC/POS Command Reference, "Command codes")."""

from __future__ import annotations

LF = 0x0A
DLE = 0x10
EOT = 0x04
ESC = 0x1B
GS = 0x1D


def check_range(name: str, value: int, low: int = 0, high: int = 255) -> int:
    """Return ``value`` when ``low <= value <= high``; otherwise raise a ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be in {low}..{high}, got {value}")
    return value
