"""The console's message catalogues (zh-CN, en) and the formatting of amounts and times.

Every text the page shows is a catalogue key; amounts, grams and times are formatted here so
the page never formats money itself.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib import resources
from typing import Any

from branchline.server.console.settings import LANGUAGES

METALS = frozenset({"XAU", "XAG", "XPT", "XPD"})


@cache
def catalogue(lang: str) -> dict[str, str]:
    if lang not in LANGUAGES:
        raise KeyError(f"lang: {lang!r} is not one of {', '.join(LANGUAGES)}")
    text = (
        resources.files("branchline.server.console")
        .joinpath(f"messages/{lang}.json")
        .read_text(encoding="utf-8")
    )
    data: dict[str, str] = json.loads(text)
    return data


def text(lang: str, key: str, **values: Any) -> str:
    message = catalogue(lang).get(key, key)
    try:
        return message.format(**values)
    except (KeyError, IndexError):
        return message


def humanised(key: str) -> str:
    """``loan_officer`` / ``loanOfficer`` -> ``Loan officer``: readable, never the raw key."""
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", key).replace("_", " ").replace("-", " ")
    words = " ".join(words.split()).lower()
    return words[:1].upper() + words[1:] if words else key


def named(lang: str, prefix: str, key: str) -> str:
    """The catalogue's words for ``<prefix>.<key>``, else the key humanised (an id the
    catalogue does not know yet still reads as words)."""
    name = f"{prefix}.{key.lower()}"
    return text(lang, name) if name in catalogue(lang) else humanised(key)


def business_name(lang: str, business_type: str) -> str:
    """A business type (a teller's skill: ``loan``, ``account_opening``, ...) in words."""
    return named(lang, "business", business_type)


def format_amount(lang: str, amount: str, currency: str) -> str:
    """``CNY 1,234.50`` / ``1,234.50 元``; metals in grams: ``12.500 g XAU``."""
    if not amount:
        return ""
    try:
        value = Decimal(amount)
    except InvalidOperation:
        return amount
    currency = currency.upper()
    if currency in METALS:
        return text(
            lang,
            "format.grams",
            grams=f"{value.quantize(Decimal('0.001')):,}",
            metal=text(lang, f"metal.{currency}"),
        )
    return text(
        lang, "format.money", amount=f"{value.quantize(Decimal('0.01')):,}", currency=currency
    )


def format_time(when: datetime | None) -> str:
    """``2026-12-06 21:40 UTC`` in both languages (staff compare times across screens)."""
    if when is None:
        return ""
    return f"{when.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
