"""The bank's purchase rules, read from the tables the bank edits, and the checks that refuse
by rule name (docs/flows/cheques.md, "Purchase methods and rules")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Row, and_, func, select

from branchline.common.errors import FailedPrecondition, NotFound, PermissionDenied
from branchline.server.cheques.schema import (
    cheque_accounts,
    cheque_book_types,
    cheque_books,
    cheque_config,
    cheque_purchases,
    cheque_type_rules,
)

PERIODS = ("day", "week", "month", "year")
ACCOUNT_STATES = ("active", "frozen", "dormant", "closed")
METHODS = ("card_pin", "purchase_code")

# Bank-wide settings and their defaults (cheque_config rows override them).
DEFAULTS: Mapping[str, str] = {
    "bank_name": "Branchline Bank",
    "bank_code": "105100000017",
    "stop_sale": "no",
    "method.card_pin": "on",
    "method.purchase_code": "on",
    "code_ttl_hours": "72",
    "code_max_failures": "5",
    "face_max_attempts": "3",
    "image_retention_days": "30",
}


@dataclass(frozen=True)
class BookType:
    book_type: str
    name: str
    prefix: str
    leaves_per_book: int
    currency: str
    printing_cost_minor: int
    handling_fee_minor: int
    period: str
    period_limit: int
    on_sale: bool

    @property
    def fee_minor(self) -> int:
        return self.printing_cost_minor + self.handling_fee_minor


def config(conn: Connection) -> dict[str, str]:
    values = dict(DEFAULTS)
    for row in conn.execute(select(cheque_config)):
        values[row.key] = row.value
    return values


def book_types(conn: Connection) -> dict[str, BookType]:
    rows = conn.execute(select(cheque_book_types).order_by(cheque_book_types.c.book_type))
    return {row.book_type: BookType(**row._mapping) for row in rows}


def allowed_types(conn: Connection, account_type: str) -> set[str]:
    rows = conn.execute(
        select(cheque_type_rules.c.book_type).where(
            cheque_type_rules.c.account_type == account_type
        )
    )
    return {r.book_type for r in rows}


def account_row(conn: Connection, *, account_id: str = "", number: str = "") -> Row:  # type: ignore[type-arg]
    column = cheque_accounts.c.account_id if account_id else cheque_accounts.c.account_number
    field = "card_pin.account_id" if account_id else "purchase_code.account_number"
    row = conn.execute(select(cheque_accounts).where(column == (account_id or number))).first()
    if row is None:
        raise NotFound(
            f"{field}: no account registered for cheque sale", field=field, reason="unknown_account"
        )
    return row


def check_account(row: Row, settings: Mapping[str, str]) -> None:  # type: ignore[type-arg]
    """The account may buy at all: active and not stopped."""
    if row.status != "active":
        raise PermissionDenied(
            f"account {row.account_number} is {row.status}: no cheques can be sold on it",
            rule=f"account_{row.status}",
        )
    if row.stop_sale or settings.get("stop_sale") == "yes":
        where = "for this account" if row.stop_sale else "bank-wide"
        raise PermissionDenied(f"cheque sale is stopped {where}", rule="stop_sale")


def check_method(method: str, settings: Mapping[str, str]) -> None:
    if settings.get(f"method.{method}") != "on":
        raise PermissionDenied(
            f"the {method} purchase method is switched off", rule="method_disabled"
        )


def period_start(period: str, now: datetime) -> datetime:
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return day.replace(month=1, day=1)


def books_in_period(conn: Connection, account_id: str, kind: BookType, now: datetime) -> int:
    """Books of ``kind`` the account bought this period: books not refunded, of purchases not
    canceled."""
    since = period_start(kind.period, now)
    count = conn.execute(
        select(func.count())
        .select_from(
            cheque_books.join(
                cheque_purchases, cheque_purchases.c.purchase_id == cheque_books.c.purchase_id
            )
        )
        .where(
            and_(
                cheque_purchases.c.account_id == account_id,
                cheque_purchases.c.created_at >= since,
                cheque_purchases.c.state != "canceled",
                cheque_books.c.book_type == kind.book_type,
                cheque_books.c.refunded.is_(False),
            )
        )
    ).scalar_one()
    return int(count)


def refusal_for_type(
    conn: Connection,
    account: Row,  # type: ignore[type-arg]
    kind: BookType,
    books: int,
    now: datetime,
) -> PermissionDenied | None:
    """Why ``books`` more of ``kind`` may not be sold on ``account`` (None: they may)."""
    if not kind.on_sale:
        return PermissionDenied(f"{kind.name}: the bank stopped selling it", rule="stop_sale")
    if kind.book_type not in allowed_types(conn, account.account_type):
        return PermissionDenied(
            f"{kind.name} may not be bought on a {account.account_type} account",
            rule="instrument_not_allowed",
        )
    already = books_in_period(conn, account.account_id, kind, now)
    if already + books > kind.period_limit:
        left = max(kind.period_limit - already, 0)
        return PermissionDenied(
            f"{kind.name}: {kind.period_limit} books per {kind.period}, {already} bought, "
            f"{left} left",
            rule="period_limit",
        )
    return None


def insufficient_funds(fee: str, available: str) -> FailedPrecondition:
    return FailedPrecondition(
        f"the fee {fee} is more than the {available} available in the account",
        reason="insufficient_funds",
    )
