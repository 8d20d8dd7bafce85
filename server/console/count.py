"""What the back office found in a carrier, from the count form to a TubeAsset.

Cash is counted note by note: the clerk enters how many of each denomination and the total
must be the amount entered (a slip of the hand shows up before it reaches the customer).
Metal is weighed in grams; a bill is identified by its number.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from branchline.common.errors import InvalidArgument, check_text, echo
from branchline.v1 import tube_pb2 as pb

# The notes and coins a back office counts, largest first; other currencies: notes only.
DENOMINATIONS: dict[str, tuple[str, ...]] = {
    "CNY": ("100", "50", "20", "10", "5", "1", "0.5", "0.1"),
    "USD": ("100", "50", "20", "10", "5", "2", "1"),
    "EUR": ("500", "200", "100", "50", "20", "10", "5"),
    "HKD": ("1000", "500", "100", "50", "20", "10"),
}
DEFAULT_DENOMINATIONS = ("1000", "500", "100", "50", "20", "10", "5", "1")
MAX_NOTES = 100_000
KINDS = {"cash": pb.ASSET_KIND_CASH, "metal": pb.ASSET_KIND_METAL, "bill": pb.ASSET_KIND_BILL}


@dataclass(frozen=True)
class Count:
    asset: pb.TubeAsset
    note: str


def denominations(currency: str) -> tuple[str, ...]:
    return DENOMINATIONS.get(currency.upper(), DEFAULT_DENOMINATIONS)


def _decimal(field: str, text: Any) -> Decimal:
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation:
        raise InvalidArgument(field, f"is not a number: {echo(text)}") from None
    if not value.is_finite() or value < 0:
        raise InvalidArgument(field, f"must be zero or more, got {echo(text)}")
    return value


def _notes(currency: str, given: Any) -> tuple[Decimal, str]:
    """The total of ``{denomination: how many}`` and the breakdown for the count's note."""
    if not isinstance(given, dict) or not given:
        raise InvalidArgument("denominations", "enter how many notes of each denomination")
    allowed = denominations(currency)
    total = Decimal(0)
    parts: list[str] = []
    for denomination in allowed:
        raw = given.get(denomination, "")
        if raw in ("", None):
            continue
        field = f"denominations.{denomination}"
        text = str(raw).strip()
        if not text.isdigit() or int(text) > MAX_NOTES:
            raise InvalidArgument(field, f"a whole number of notes, 0 to {MAX_NOTES}")
        if int(text):
            total += Decimal(denomination) * int(text)
            parts.append(f"{denomination}x{int(text)}")
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise InvalidArgument(
            f"denominations.{unknown[0]}", f"{currency} has no {echo(unknown[0])} note"
        )
    return total, " ".join(parts)


def parse_count(data: dict[str, Any], currency: str) -> Count:
    """The form's ``kind``, ``amount``, ``denominations`` / bill fields, ``note``: checked, each
    refusal naming its field. ``currency`` is the deposit's."""
    kind = data.get("kind")
    if kind not in KINDS:
        raise InvalidArgument("kind", f"one of {', '.join(KINDS)}, got {echo(kind)}")
    note = check_text("note", str(data.get("note", "")), max_len=500, required=False)
    amount_text = str(data.get("amount", "")).strip()
    asset = pb.TubeAsset(kind=KINDS[kind], currency=currency)
    if kind == "cash":
        total, breakdown = _notes(currency, data.get("denominations"))
        if amount_text and _decimal("amount", amount_text) != total:
            raise InvalidArgument(
                "denominations",
                f"the notes add up to {total:f} {currency}, not the {amount_text} entered",
                reason="count_mismatch",
            )
        asset.amount = f"{total:f}"
        note = " ".join(p for p in (f"[{breakdown}]" if breakdown else "", note) if p)
    elif kind == "metal":
        if not amount_text:
            raise InvalidArgument("amount", "enter the weight in grams")
        asset.amount = f"{_decimal('amount', amount_text):f}"
    else:
        if not amount_text:
            raise InvalidArgument("amount", "enter the bill's face value")
        asset.amount = f"{_decimal('amount', amount_text):f}"
        asset.bill.bill_id = check_text("bill_id", str(data.get("bill_id", "")).strip())
        asset.bill.instrument = check_text(
            "instrument", str(data.get("instrument", "")).strip(), max_len=32, required=False
        )
        asset.bill.maturity = check_text(
            "maturity", str(data.get("maturity", "")).strip(), max_len=10, required=False
        )
    return Count(asset, note)
