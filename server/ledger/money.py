"""Amounts and assets of the embedded ledger: exact decimals, never floats.

Units:
- Currencies are ISO 4217 codes with their minor units (CNY, USD … 2 decimals; JPY, KRW 0).
- Precious metals are held in GRAMS with 3 decimals (milligrams): ``XAU`` gold, ``XAG``
  silver. ISO 4217 defines XAU/XAG as one troy ounce; here the unit is the gram, as in
  the gram-denominated accumulation accounts of Chinese banks.
- The database stores every amount as a signed integer of the asset's smallest unit
  (BigInteger), so no backend ever rounds.

Rounding is ROUND_HALF_UP, and happens only where a conversion makes it necessary (FX).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Literal

from branchline.common.errors import InvalidArgument

AssetKind = Literal["currency", "metal"]

BASE_CURRENCY = "CNY"

# Refuse absurdly long input before Decimal has to parse it.
MAX_AMOUNT_TEXT = 40
_DECIMAL_TEXT = re.compile(r"[+-]?\d+(\.\d+)?")

AmountInput = Decimal | str | int


@dataclass(frozen=True)
class Asset:
    code: str
    exponent: int  # decimals of the smallest unit
    kind: AssetKind
    name: str

    @property
    def unit(self) -> str:
        return "g" if self.kind == "metal" else self.code

    @property
    def quantum(self) -> Decimal:
        return Decimal(1).scaleb(-self.exponent)


def _currency(code: str, exponent: int, name: str) -> Asset:
    return Asset(code, exponent, "currency", name)


ASSETS: Mapping[str, Asset] = {
    a.code: a
    for a in (
        _currency("CNY", 2, "Chinese yuan"),
        _currency("USD", 2, "US dollar"),
        _currency("EUR", 2, "euro"),
        _currency("HKD", 2, "Hong Kong dollar"),
        _currency("GBP", 2, "pound sterling"),
        _currency("JPY", 0, "Japanese yen"),
        _currency("CHF", 2, "Swiss franc"),
        _currency("AUD", 2, "Australian dollar"),
        _currency("CAD", 2, "Canadian dollar"),
        _currency("SGD", 2, "Singapore dollar"),
        _currency("MOP", 2, "Macanese pataca"),
        _currency("KRW", 0, "South Korean won"),
        Asset("XAU", 3, "metal", "gold (grams)"),
        Asset("XAG", 3, "metal", "silver (grams)"),
    )
}

# Per-transaction ceilings, in the asset's own unit; anything above is refused as absurd.
DEFAULT_CEILING = Decimal("1000000")
DEFAULT_CEILINGS: Mapping[str, Decimal] = {
    "JPY": Decimal("20000000"),
    "KRW": Decimal("200000000"),
    "XAU": Decimal("10000"),  # 10 kg
    "XAG": Decimal("500000"),  # 500 kg
}


@dataclass(frozen=True)
class LedgerSettings:
    ceilings: Mapping[str, Decimal] = field(default_factory=lambda: dict(DEFAULT_CEILINGS))
    default_ceiling: Decimal = DEFAULT_CEILING
    # A rate version stays usable this long after a newer one replaced it, so a customer
    # who saw it just before the change can still complete.
    rate_validity: timedelta = timedelta(seconds=60)
    # How long an authorised withdrawal reserves the amount.
    hold_ttl: timedelta = timedelta(minutes=30)

    def ceiling(self, code: str) -> Decimal:
        return self.ceilings.get(code, self.default_ceiling)


def asset(code: object, field_name: str) -> Asset:
    if not isinstance(code, str) or not code:
        raise InvalidArgument(field_name, "a currency code is required", reason="unknown_currency")
    found = ASSETS.get(code.strip().upper())
    if found is None:
        shown = code if len(code) <= 12 else code[:12] + "…"
        raise InvalidArgument(
            field_name,
            f"{shown!r} is not a currency or metal the bank holds ({', '.join(sorted(ASSETS))})",
            reason="unknown_currency",
        )
    return found


def to_decimal(value: object, field_name: str) -> Decimal:
    """Any finite decimal the caller passed; floats are refused (they are not exact)."""
    if isinstance(value, bool) or isinstance(value, float):
        raise InvalidArgument(
            field_name,
            f"pass a decimal string, not {type(value).__name__}",
            reason="invalid_amount",
        )
    if isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, Decimal):
        result = value
    elif isinstance(value, str):
        text = value.strip()
        if len(text) > MAX_AMOUNT_TEXT:
            raise InvalidArgument(
                field_name, f"{len(text)} characters is too long", reason="invalid_amount"
            )
        if not _DECIMAL_TEXT.fullmatch(text):
            raise InvalidArgument(
                field_name,
                f"{text!r} is not a decimal number such as 100.50",
                reason="invalid_amount",
            )
        result = Decimal(text)
    else:
        raise InvalidArgument(
            field_name, f"expected a decimal, got {type(value).__name__}", reason="invalid_amount"
        )
    if not result.is_finite():
        raise InvalidArgument(
            field_name, f"{value} is not a finite number", reason="invalid_amount"
        )
    return result


def parse_amount(
    value: object,
    of: Asset,
    field_name: str,
    settings: LedgerSettings,
    *,
    allow_zero: bool = False,
) -> Decimal:
    """A positive amount of ``of`` within the ceiling and its decimals, at its exponent."""
    amount = to_decimal(value, field_name)
    if amount < 0:
        raise InvalidArgument(field_name, f"{amount} is negative", reason="negative_amount")
    if amount == 0 and not allow_zero:
        raise InvalidArgument(field_name, "must be more than zero", reason="zero_amount")
    ceiling = settings.ceiling(of.code)
    if amount > ceiling:
        raise InvalidArgument(
            field_name,
            f"{amount} {of.unit} is over the per-transaction limit of {format_amount(ceiling, of)}",
            reason="amount_over_limit",
        )
    try:
        exact = amount.quantize(of.quantum) == amount
    except InvalidOperation:
        exact = False
    if not exact:
        raise InvalidArgument(
            field_name,
            f"{amount} has more than {of.exponent} decimal(s) for {of.code}",
            reason="too_many_decimals",
        )
    return amount.quantize(of.quantum)


def round_half_up(amount: Decimal, of: Asset) -> Decimal:
    return amount.quantize(of.quantum, rounding=ROUND_HALF_UP)


def to_minor(amount: Decimal, of: Asset) -> int:
    """The integer count of smallest units; the amount must already fit the exponent."""
    scaled = amount.scaleb(of.exponent)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} has more than {of.exponent} decimals for {of.code}")
    return int(scaled)


def from_minor(minor: int, of: Asset) -> Decimal:
    return Decimal(minor).scaleb(-of.exponent).quantize(of.quantum)


def format_amount(amount: Decimal, of: Asset) -> str:
    """For messages: ``1,234.50 CNY``, ``12.500 g XAU``."""
    text = f"{amount.quantize(of.quantum):,}"
    return f"{text} g {of.code}" if of.kind == "metal" else f"{text} {of.code}"
