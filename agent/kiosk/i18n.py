"""Message catalogues (zh-CN, en) and per-language formatting of amounts, grams and dates.

Every text the page shows is a catalogue key; values that go into ``{placeholders}`` are
formatted here, on the agent's side, so the page never formats money itself.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib import resources
from typing import Any

from branchline.agent.kiosk.settings import LANGUAGES

# Precious metals are counted in grams, to three places.
METALS = frozenset({"XAU", "XAG", "XPT", "XPD"})


@cache
def catalogue(lang: str) -> dict[str, str]:
    """The messages of ``lang`` (``zh-CN`` or ``en``), as shipped beside this module."""
    if lang not in LANGUAGES:
        raise KeyError(f"lang: {lang!r} is not one of {', '.join(LANGUAGES)}")
    text = (
        resources.files("branchline.agent.kiosk")
        .joinpath(f"messages/{lang}.json")
        .read_text(encoding="utf-8")
    )
    data: dict[str, str] = json.loads(text)
    return data


def text(lang: str, key: str, **values: Any) -> str:
    """The catalogue message ``key`` in ``lang`` with ``{placeholders}`` filled in."""
    message = catalogue(lang).get(key, key)
    try:
        return message.format(**values)
    except (KeyError, IndexError):
        return message


def _decimal(amount: str | Decimal) -> Decimal | None:
    try:
        value = Decimal(str(amount).strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def format_number(amount: str | Decimal, places: int) -> str:
    """``1234.5`` -> ``1,234.50`` (the same digit grouping in both languages)."""
    value = _decimal(amount)
    if value is None:
        return str(amount)
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and -exponent < places:
        value = value.quantize(Decimal(1).scaleb(-places))
    return f"{value:,}"


def format_amount(lang: str, amount: str | Decimal, currency: str) -> str:
    """Money or metal as the customer reads it: ``CNY 1,234.50`` / ``1,234.50 元``;
    metals in grams: ``12.500 g gold`` / ``黄金 12.500 克``."""
    currency = currency.upper()
    if currency in METALS:
        grams = format_number(amount, 3)
        return text(lang, "format.grams", grams=grams, metal=text(lang, f"metal.{currency}"))
    number = format_number(amount, 2)
    return text(lang, "format.money", amount=number, currency=currency_name(lang, currency))


def currency_name(lang: str, currency: str) -> str:
    key = f"currency.{currency.upper()}"
    return catalogue(lang).get(key, currency.upper())


def format_datetime(lang: str, when: datetime) -> str:
    """``6 Dec 2026 21:40 UTC`` / ``2026年12月6日 21:40 UTC``."""
    when = when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    month = text(lang, f"month.{when.month}")
    return text(
        lang,
        "format.datetime",
        year=when.year,
        month=month,
        month_number=when.month,
        day=when.day,
        time=f"{when:%H:%M}",
    )


def format_seconds(lang: str, seconds: float) -> str:
    """An estimated wait: ``about 3 min`` / ``约 3 分钟`` (under a minute: ``under 1 min``)."""
    minutes = round(seconds / 60)
    if minutes < 1:
        return text(lang, "format.wait_under_minute")
    return text(lang, "format.wait_minutes", minutes=minutes)
