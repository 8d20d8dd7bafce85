"""Field checks of tube messages: each raises InvalidArgument naming the field.

Amounts go through the ledger's own rules (``parse_amount``), so the codes are the ledger's:
negative_amount, zero_amount, amount_over_limit, too_many_decimals, invalid_amount,
unknown_currency.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from branchline.common.errors import InvalidArgument
from branchline.common.redaction import redact_text
from branchline.server.ledger.money import Asset, LedgerSettings, asset, parse_amount
from branchline.server.tube.model import BILL, CASH, METAL

MAX_REQUEST_ID = 128
MAX_TXN_ID = 64
MAX_CARRIER = 2**32 - 1
MAX_DETAIL = 500
MAX_NOTE = 500
MAX_RESOLUTION = 500
MAX_BILL_ID = 64
MAX_INSTRUMENT = 32

_TXN_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
_REASON = re.compile(r"[a-z][a-z0-9_]{0,63}")
_MATURITY = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class AssetInput:
    """An asset as the caller sent it (``convert.asset_input`` reads it off the wire);
    ``kind`` is None when the caller named no kind this service knows."""

    kind: str | None
    currency: str
    amount: str
    bill_id: str = ""
    instrument: str = ""
    maturity: str = ""

    @property
    def has_bill(self) -> bool:
        return bool(self.bill_id or self.instrument or self.maturity)


@dataclass(frozen=True)
class OpenRequest:
    """A terminal's ``tube_open`` as plain values (``convert.open_request``), unchecked."""

    request_id: str
    txn_id: str
    kind: str | None  # deposit, withdrawal; None when the terminal sent no kind known here
    session_token: str
    account_id: str
    asset: AssetInput
    rate_version: int  # 0: none sent
    digest: str  # what it asks for (``convert.open_hash``), to know the same open again


@dataclass(frozen=True)
class ParsedAsset:
    kind: str  # cash, metal, bill
    of: Asset
    amount: Decimal
    bill_id: str | None = None
    instrument: str | None = None
    maturity: str | None = None  # YYYY-MM-DD

    @property
    def currency(self) -> str:
        return self.of.code


def _shown(value: str, limit: int = 40) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "…")


def request_id(value: str, field: str) -> str:
    if not value:
        raise InvalidArgument(field, "must not be empty")
    if len(value) > MAX_REQUEST_ID or not value.isprintable():
        raise InvalidArgument(field, f"printable characters, at most {MAX_REQUEST_ID}")
    return value


def txn_id(value: str, field: str) -> str:
    if not value:
        raise InvalidArgument(field, "must not be empty")
    if not _TXN_ID.fullmatch(value):
        raise InvalidArgument(
            field,
            f"{_shown(value)} is not a transaction id (letters, digits and '-', at most "
            f"{MAX_TXN_ID}, e.g. a UUID)",
        )
    return value


def carrier(value: int, field: str) -> int:
    if not 1 <= value <= MAX_CARRIER:
        raise InvalidArgument(field, f"the carrier's number is required (1 to {MAX_CARRIER})")
    return value


def reason(value: str, field: str, *, required: bool) -> str:
    if not value:
        if required:
            raise InvalidArgument(field, "a reason code is required")
        return ""
    if not _REASON.fullmatch(value):
        raise InvalidArgument(
            field, f"{_shown(value)} is not a reason code (lower-case letters, digits and '_')"
        )
    return value


def text(value: str, field: str, limit: int, *, required: bool = False) -> str:
    """Free text for people; card numbers in it are masked before it is stored."""
    if required and not value.strip():
        raise InvalidArgument(field, "must not be empty")
    if len(value) > limit:
        raise InvalidArgument(field, f"longer than {limit} characters")
    if any(not ch.isprintable() and ch not in "\n\t" for ch in value):
        raise InvalidArgument(field, "only printable characters")
    return redact_text(value.strip())


def maturity(value: str, field: str) -> str:
    if not _MATURITY.fullmatch(value):
        raise InvalidArgument(field, f"{_shown(value)} is not YYYY-MM-DD")
    try:
        date.fromisoformat(value)
    except ValueError:
        raise InvalidArgument(field, f"{_shown(value)} is not a date") from None
    return value


def _ident(value: str, field: str, limit: int) -> str:
    if not value.strip():
        raise InvalidArgument(field, "must not be empty")
    if len(value) > limit or not value.isprintable():
        raise InvalidArgument(field, f"printable characters, at most {limit}")
    return value


def parse_asset(
    given: AssetInput,
    field: str,
    settings: LedgerSettings,
    *,
    bill_details: str = "optional",
) -> ParsedAsset:
    """The asset, checked: kind, currency (a metal for metal, a currency otherwise), amount.

    ``bill_details``: "optional" (a declared deposit: checked when given), "bill_id" (a
    withdrawal names the bill), "all" (the back office's count: id, instrument, maturity).
    """
    kind = given.kind
    if kind not in (CASH, METAL, BILL):
        raise InvalidArgument(f"{field}.kind", "cash, metal or bill is required")
    of = asset(given.currency, f"{field}.currency")
    if (kind == METAL) != (of.kind == "metal"):
        wanted = "a metal (XAU, XAG)" if kind == METAL else "a currency"
        raise InvalidArgument(
            f"{field}.currency", f"{of.code} is not {wanted}; {kind} is in {wanted}"
        )
    amount = parse_amount(given.amount, of, f"{field}.amount", settings)
    if kind != BILL:
        if given.has_bill:
            raise InvalidArgument(f"{field}.bill", "only for a bill")
        return ParsedAsset(kind, of, amount)
    bill = given
    bill_id = instrument = due = None
    if bill.bill_id or bill_details in ("bill_id", "all"):
        bill_id = _ident(bill.bill_id, f"{field}.bill.bill_id", MAX_BILL_ID)
    if bill.instrument or bill_details == "all":
        instrument = _ident(bill.instrument, f"{field}.bill.instrument", MAX_INSTRUMENT)
    if bill.maturity or bill_details == "all":
        due = maturity(bill.maturity, f"{field}.bill.maturity")
    return ParsedAsset(kind, of, amount, bill_id, instrument, due)
