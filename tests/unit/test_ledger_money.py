"""Amount and currency validation, minor units, and the FX arithmetic (no database)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from branchline.common.errors import FailedPrecondition, InvalidArgument
from branchline.server.ledger import money
from branchline.server.ledger.fx import Rate, RateTable, convert, validate_rates
from branchline.server.ledger.money import (
    ASSETS,
    LedgerSettings,
    asset,
    format_amount,
    from_minor,
    parse_amount,
    to_minor,
)

SETTINGS = LedgerSettings()
CNY, JPY, XAU = ASSETS["CNY"], ASSETS["JPY"], ASSETS["XAU"]
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_assets_and_their_units() -> None:
    assert (CNY.exponent, JPY.exponent, XAU.exponent, ASSETS["XAG"].exponent) == (2, 0, 3, 3)
    assert XAU.kind == "metal" and XAU.unit == "g"
    assert asset(" usd ", "f").code == "USD"
    assert format_amount(Decimal("1234.5"), CNY) == "1,234.50 CNY"
    assert format_amount(Decimal("12.5"), XAU) == "12.500 g XAU"


@pytest.mark.parametrize(
    ("value", "of", "expected"),
    [
        ("100.50", CNY, Decimal("100.50")),
        ("100", CNY, Decimal("100.00")),
        ("100.100", CNY, Decimal("100.10")),  # trailing zeros are not extra precision
        (Decimal("0.01"), CNY, Decimal("0.01")),
        (1500, JPY, Decimal("1500")),
        ("12.345", XAU, Decimal("12.345")),
        ("1000000.00", CNY, Decimal("1000000.00")),
    ],
)
def test_valid_amounts(value: object, of: money.Asset, expected: Decimal) -> None:
    parsed = parse_amount(value, of, "deposit.amount", SETTINGS)
    assert parsed == expected and parsed.as_tuple().exponent == -of.exponent


@pytest.mark.parametrize(
    ("value", "of", "code", "text"),
    [
        ("-5", CNY, "negative_amount", "deposit.amount: -5 is negative"),
        ("0", CNY, "zero_amount", "deposit.amount: must be more than zero"),
        ("0.00", CNY, "zero_amount", "more than zero"),
        (
            "1000000.01",
            CNY,
            "amount_over_limit",
            "over the per-transaction limit of 1,000,000.00 CNY",
        ),
        ("1E+30", CNY, "invalid_amount", "not a decimal number"),
        (Decimal("1E+30"), CNY, "amount_over_limit", "limit"),
        ("10001", XAU, "amount_over_limit", "10,000.000 g XAU"),
        ("1.005", CNY, "too_many_decimals", "more than 2 decimal(s) for CNY"),
        ("10.5", JPY, "too_many_decimals", "more than 0 decimal(s) for JPY"),
        ("1.0001", XAU, "too_many_decimals", "more than 3 decimal(s) for XAU"),
        (1.5, CNY, "invalid_amount", "not float"),
        (True, CNY, "invalid_amount", "not bool"),
        (None, CNY, "invalid_amount", "got NoneType"),
        ("ten", CNY, "invalid_amount", "'ten' is not a decimal number"),
        ("", CNY, "invalid_amount", "not a decimal number"),
        ("1" * 41, CNY, "invalid_amount", "too long"),
        (Decimal("NaN"), CNY, "invalid_amount", "not a finite number"),
        (Decimal("Infinity"), CNY, "invalid_amount", "not a finite number"),
    ],
)
def test_bad_amounts_name_the_field_and_reason(
    value: object, of: money.Asset, code: str, text: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_amount(value, of, "deposit.amount", SETTINGS)
    assert caught.value.code == code
    assert caught.value.message.startswith("deposit.amount: ")
    assert text in caught.value.message


def test_unknown_currency() -> None:
    for bad in ("XYZ", "", None, "cny1", "A" * 100):
        with pytest.raises(InvalidArgument) as caught:
            asset(bad, "deposit.currency")
        assert caught.value.code == "unknown_currency"
        assert caught.value.message.startswith("deposit.currency: ")
        assert len(caught.value.message) < 200


def test_configured_ceiling() -> None:
    strict = LedgerSettings(ceilings={"USD": Decimal("5000")})
    with pytest.raises(InvalidArgument, match="5,000.00 USD"):
        parse_amount("5000.01", ASSETS["USD"], "withdrawal.amount", strict)
    assert parse_amount("999999", CNY, "x", strict) == Decimal("999999.00")


@given(st.integers(min_value=-(10**15), max_value=10**15), st.sampled_from(sorted(ASSETS)))
def test_minor_units_round_trip(minor: int, code: str) -> None:
    of = ASSETS[code]
    assert to_minor(from_minor(minor, of), of) == minor


def test_to_minor_refuses_excess_decimals() -> None:
    with pytest.raises(ValueError):
        to_minor(Decimal("1.001"), CNY)


TABLE = RateTable(
    version_id=7,
    source="test",
    effective_at=NOW,
    created_at=NOW,
    superseded_at=None,
    rates={
        "USD": Rate("USD", Decimal("7.1000"), Decimal("7.2000")),
        "EUR": Rate("EUR", Decimal("7.7500"), Decimal("7.8500")),
        "JPY": Rate("JPY", Decimal("0.04700"), Decimal("0.04900")),
        "XAU": Rate("XAU", Decimal("560.00"), Decimal("566.00")),
    },
)


def test_customer_sells_at_bid_and_buys_at_ask() -> None:
    sell = convert(TABLE, "USD", "CNY", "100", "from", NOW, SETTINGS)
    assert (sell.from_amount, sell.to_amount, sell.rate) == (
        Decimal("100.00"),
        Decimal("710.00"),
        Decimal("7.10000000"),
    )
    buy = convert(TABLE, "CNY", "USD", "100", "to", NOW, SETTINGS)
    assert (buy.from_amount, buy.to_amount) == (Decimal("720.00"), Decimal("100.00"))
    assert buy.rate_version == 7 and buy.from_rate == 1 and buy.to_rate == Decimal("7.2")


def test_rounding_is_half_up_once() -> None:
    # 0.07 USD * 7.1 = 0.497 CNY → 0.50; 1 JPY * 0.047 = 0.047 → 0.05.
    assert convert(TABLE, "USD", "CNY", "0.07", "from", NOW, SETTINGS).to_amount == Decimal("0.50")
    assert convert(TABLE, "JPY", "CNY", "1", "from", NOW, SETTINGS).to_amount == Decimal("0.05")
    # 100 CNY buys 100/7.2 = 13.888… USD → 13.89.
    assert convert(TABLE, "CNY", "USD", "100", "from", NOW, SETTINGS).to_amount == Decimal("13.89")
    # Exactly half a cent rounds up: 0.5 JPY is not a JPY amount, but 0.05 CNY → JPY:
    # 0.05 / 0.049 = 1.0204… → 1 JPY.
    assert convert(TABLE, "CNY", "JPY", "0.05", "from", NOW, SETTINGS).to_amount == Decimal("1")


def test_cross_rate_goes_through_cny_and_metals_are_grams() -> None:
    cross = convert(TABLE, "USD", "EUR", "100", "from", NOW, SETTINGS)
    # 100 * 7.10 / 7.85 = 90.4458… → 90.45
    assert cross.to_amount == Decimal("90.45")
    assert cross.rate == Decimal("0.90445860")
    gold = convert(TABLE, "CNY", "XAU", "10", "to", NOW, SETTINGS)
    assert gold.from_amount == Decimal("5660.00")
    grams = convert(TABLE, "CNY", "XAU", "1000", "from", NOW, SETTINGS)
    assert grams.to_amount == Decimal("1.767")  # 1000 / 566 = 1.76678… g


def test_conversion_refusals() -> None:
    with pytest.raises(InvalidArgument, match="amount_too_small|smallest unit"):
        convert(TABLE, "JPY", "XAU", "1", "from", NOW, SETTINGS)
    with pytest.raises(InvalidArgument, match="converts to 1,065,000.00 CNY, over the"):
        convert(TABLE, "USD", "CNY", "150000", "from", NOW, SETTINGS)
    with pytest.raises(FailedPrecondition, match="no rate for GBP") as caught:
        convert(TABLE, "GBP", "CNY", "1", "from", NOW, SETTINGS)
    assert caught.value.code == "no_rate"
    with pytest.raises(InvalidArgument, match="both CNY"):
        convert(TABLE, "CNY", "CNY", "1", "from", NOW, SETTINGS)
    with pytest.raises(InvalidArgument, match="quote.side: 'sideways'"):
        convert(TABLE, "USD", "CNY", "1", "sideways", NOW, SETTINGS)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("rates", "text"),
    [
        ({}, "at least one currency"),
        ({"CNY": ("1", "1")}, "base currency CNY"),
        ({"USD": ("7.2", "7.1")}, "bid 7.2 is above ask 7.1"),
        ({"USD": ("0", "7.1")}, "rates[USD].bid: 0 must be more than zero"),
        ({"USD": ("-1", "7.1")}, "must be more than zero"),
        ({"USD": ("7.123456789", "7.2")}, "more than 8 decimals"),
        ({"USD": ("7", "2000000")}, "rates[USD].ask: 2000000 is over"),
        ({"ZZZ": ("1", "2")}, "is not a currency"),
        ({"USD": (7.1, 7.2)}, "not float"),
        ({"USD": "7.1"}, "expected (bid, ask)"),
    ],
)
def test_bad_rates(rates: dict[str, object], text: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_rates(rates)  # type: ignore[arg-type]
    assert text in caught.value.message
