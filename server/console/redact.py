"""What never reaches a staff page: a card number beyond first 6 / last 4, an ID number
beyond its first 4 and last 2 digits."""

from __future__ import annotations

import re

_DIGITS = re.compile(r"\d")


def mask_pan(text: str) -> str:
    """Keep at most the first 6 and last 4 digits of a card number; mask the rest. The server
    already sends ``476173******0010``; this makes sure a full number never slips through."""
    digits = _DIGITS.findall(text)
    if len(digits) <= 10:
        return text
    keep = {i for i in range(len(digits)) if i < 6 or i >= len(digits) - 4}
    out: list[str] = []
    seen = 0
    for char in text:
        if char.isdigit():
            out.append(char if seen in keep else "*")
            seen += 1
        else:
            out.append(char)
    return "".join(out)


def mask_id_number(text: str) -> str:
    """A national ID number shown partly: ``1101**********123X`` -> first 4 and last 2 kept."""
    if len(text) <= 6:
        return "*" * len(text)
    return text[:4] + "*" * (len(text) - 6) + text[-2:]
