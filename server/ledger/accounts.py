"""Accounts: customers' cash, metal and bills accounts, the bank's internal accounts, card links.

Customer kinds: ``cash`` (a currency), ``metal`` (grams of XAU/XAG), ``bills`` (the face
value, in one currency, of the negotiable instruments held in custody for the customer).
Internal kinds, one per (branch, asset), created on first use: ``vault_cash``,
``vault_metal``, ``bills_custody`` and ``fx_position``. Internal accounts may go negative;
with legs signed credit-positive, the vault's balance is minus what it physically holds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Connection, Engine, Row, select
from sqlalchemy.dialects import postgresql, sqlite

from branchline.common.errors import InvalidArgument, NotFound
from branchline.common.ids import random_hex
from branchline.server.ledger.money import (
    Asset,
    asset,
    from_minor,
)
from branchline.server.ledger.schema import accounts, bill_holdings, card_accounts, cards, customers
from branchline.server.storage import write_transaction
from branchline.server.storage.engine import connect
from branchline.server.storage.fastpath import execute
from branchline.server.storage.prebuilt import by_key, key

CASH = "cash"
METAL = "metal"
BILLS = "bills"
CUSTOMER_KINDS = (CASH, METAL, BILLS)

VAULT_CASH = "vault_cash"
VAULT_METAL = "vault_metal"
BILLS_CUSTODY = "bills_custody"
FX_POSITION = "fx_position"
INTERNAL_KINDS = (VAULT_CASH, VAULT_METAL, BILLS_CUSTODY, FX_POSITION)

MAX_ID = 64
MAX_BRANCH = 40  # an internal account id is "int:<kind>:<branch>:<ccy>", within 64


@dataclass(frozen=True)
class Account:
    account_id: str
    customer_id: str | None
    branch: str | None
    kind: str
    currency: str
    balance: Decimal
    held: Decimal
    created_at: datetime

    @property
    def available(self) -> Decimal:
        return self.balance - self.held

    @property
    def internal(self) -> bool:
        return self.customer_id is None


@dataclass(frozen=True)
class BillHolding:
    bill_id: str
    instrument: str
    customer_id: str
    account_id: str
    currency: str
    face_value: Decimal
    maturity: date
    status: str  # held, withdrawn
    hold_id: str | None
    deposit_entry_id: int
    withdrawal_entry_id: int | None


def account_from_row(row: Row) -> Account:  # type: ignore[type-arg]
    of = asset(row.currency, "account.currency")
    return Account(
        account_id=row.account_id,
        customer_id=row.customer_id,
        branch=row.branch,
        kind=row.kind,
        currency=row.currency,
        balance=from_minor(row.balance_minor, of),
        held=from_minor(row.held_minor, of),
        created_at=row.created_at,
    )


def bill_from_row(row: Row) -> BillHolding:  # type: ignore[type-arg]
    return BillHolding(
        bill_id=row.bill_id,
        instrument=row.instrument,
        customer_id=row.customer_id,
        account_id=row.account_id,
        currency=row.currency,
        face_value=from_minor(row.face_minor, asset(row.currency, "bill.currency")),
        maturity=row.maturity,
        status=row.status,
        hold_id=row.hold_id,
        deposit_entry_id=row.deposit_entry_id,
        withdrawal_entry_id=row.withdrawal_entry_id,
    )


def check_identifier(value: object, field_name: str, limit: int = MAX_ID) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgument(field_name, "must not be empty")
    if len(value) > limit:
        raise InvalidArgument(field_name, f"{len(value)} characters; at most {limit}")
    if not value.isprintable():
        raise InvalidArgument(field_name, "only printable characters")
    return value


def asset_for_kind(kind: str, currency: object, field_name: str) -> Asset:
    """The account's asset, checked against its kind (metal accounts hold metals only)."""
    of = asset(currency, field_name)
    wants_metal = kind in (METAL, VAULT_METAL)
    if wants_metal and of.kind != "metal":
        raise InvalidArgument(
            field_name,
            f"a {kind} account holds XAU or XAG, not {of.code}",
            reason="currency_mismatch",
        )
    if not wants_metal and kind != FX_POSITION and of.kind == "metal":
        raise InvalidArgument(
            field_name,
            f"a {kind} account holds a currency, not {of.code}",
            reason="currency_mismatch",
        )
    return of


def open_account(
    engine: Engine,
    customer_id: str,
    kind: str,
    currency: str,
    now: datetime,
    account_id: str | None = None,
) -> Account:
    """Open an empty account; with an explicit ``account_id`` it is idempotent."""
    if kind not in CUSTOMER_KINDS:
        raise InvalidArgument("account.kind", f"{kind!r} is not one of {', '.join(CUSTOMER_KINDS)}")
    of = asset_for_kind(kind, currency, "account.currency")
    new_id = check_identifier(
        account_id if account_id is not None else f"A{random_hex(10).upper()}",
        "account.account_id",
    )
    if is_internal_id(new_id):
        raise InvalidArgument("account.account_id", "'int:' is for internal ones")
    with write_transaction(engine) as conn:
        if (
            conn.execute(
                select(customers.c.customer_id).where(customers.c.customer_id == customer_id)
            ).first()
            is None
        ):
            raise NotFound(f"customer {customer_id!r} does not exist", reason="unknown_customer")
        row = conn.execute(select(accounts).where(accounts.c.account_id == new_id)).first()
        if row is not None:
            found = account_from_row(row)
            if (found.customer_id, found.kind, found.currency) != (customer_id, kind, of.code):
                raise InvalidArgument("account.account_id", f"{new_id} exists for another use")
            return found
        conn.execute(
            accounts.insert().values(
                account_id=new_id,
                customer_id=customer_id,
                branch=None,
                kind=kind,
                currency=of.code,
                balance_minor=0,
                held_minor=0,
                created_at=now,
            )
        )
    found_after = get_account(engine, new_id)
    assert found_after is not None
    return found_after


def get_account(engine: Engine, account_id: str) -> Account | None:
    with connect(engine) as conn:
        row = conn.execute(select(accounts).where(accounts.c.account_id == account_id)).first()
    return account_from_row(row) if row is not None else None


def customer_accounts(conn: Connection, customer_id: str) -> list[Account]:
    """The customer's accounts in a stable order (kind, currency, id)."""
    query = by_key(accounts, ("customer_id",), order_by=("kind", "currency", "account_id"))
    rows = execute(conn, query, {key("customer_id"): customer_id}).all()
    return [account_from_row(r) for r in rows]


def link_card(engine: Engine, card_token: str, account_id: str, now: datetime) -> None:
    """Make ``account_id`` the card's account for its (kind, currency), replacing any other."""
    with write_transaction(engine) as conn:
        card = conn.execute(
            select(cards.c.customer_id).where(cards.c.card_token == card_token)
        ).first()
        if card is None:
            raise NotFound("card: not known to the bank", field="card", reason="unknown_card")
        row = conn.execute(select(accounts).where(accounts.c.account_id == account_id)).first()
        if row is None:
            raise NotFound(f"account {account_id!r} does not exist", reason="unknown_account")
        if row.customer_id != card.customer_id:
            raise InvalidArgument(
                "account_id",
                f"account {account_id} belongs to another customer than the card",
                reason="not_owner",
            )
        key = (
            (card_accounts.c.card_token == card_token)
            & (card_accounts.c.kind == row.kind)
            & (card_accounts.c.currency == row.currency)
        )
        conn.execute(card_accounts.delete().where(key))
        conn.execute(
            card_accounts.insert().values(
                card_token=card_token,
                kind=row.kind,
                currency=row.currency,
                account_id=account_id,
                linked_at=now,
            )
        )


def card_accounts_of(engine: Engine, card_token: str) -> list[Account]:
    with connect(engine) as conn:
        rows = conn.execute(
            select(accounts)
            .join(card_accounts, card_accounts.c.account_id == accounts.c.account_id)
            .where(card_accounts.c.card_token == card_token)
            .order_by(accounts.c.kind, accounts.c.currency)
        ).all()
    return [account_from_row(r) for r in rows]


def card_account(engine: Engine, card_token: str, kind: str, currency: str) -> Account | None:
    return next(
        (
            a
            for a in card_accounts_of(engine, card_token)
            if a.kind == kind and a.currency == currency
        ),
        None,
    )


def bill_holdings_of(
    engine: Engine, customer_id: str, include_withdrawn: bool = False
) -> list[BillHolding]:
    query = select(bill_holdings).where(bill_holdings.c.customer_id == customer_id)
    if not include_withdrawn:
        query = query.where(bill_holdings.c.status == "held")
    with connect(engine) as conn:
        rows = conn.execute(query.order_by(bill_holdings.c.maturity, bill_holdings.c.bill_id)).all()
    return [bill_from_row(r) for r in rows]


# --- internal accounts and row locks, inside the caller's transaction ---


INTERNAL_PREFIX = "int:"  # customers' account ids may not start with it (open_account)


def internal_account_id(kind: str, branch: str, currency: str) -> str:
    return f"{INTERNAL_PREFIX}{kind}:{branch}:{currency}"


def is_internal_id(account_id: str) -> bool:
    """The id of one of the bank's internal accounts (made by ``internal_account_id``)."""
    return account_id.startswith(INTERNAL_PREFIX)


def ensure_internal_account(
    conn: Connection, kind: str, branch: str, currency: str, now: datetime
) -> str:
    """The branch's internal account for ``currency``, created when first needed."""
    account_id = internal_account_id(kind, branch, currency)
    query = by_key(accounts, ("account_id",), ("account_id",))
    exists = execute(conn, query, {key("account_id"): account_id}).first()
    if exists is None:
        values = dict(
            account_id=account_id,
            customer_id=None,
            branch=branch,
            kind=kind,
            currency=currency,
            balance_minor=0,
            held_minor=0,
            created_at=now,
        )
        # A racing replica may create it first: then there is nothing to do.
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        conn.execute(dialect.insert(accounts).values(**values).on_conflict_do_nothing())
    return account_id


def lock_accounts(conn: Connection, account_ids: Iterable[str]) -> dict[str, Row]:  # type: ignore[type-arg]
    """Lock the accounts' rows, always in id order so two postings never deadlock."""
    locked: dict[str, Row] = {}  # type: ignore[type-arg]
    for account_id in sorted(set(account_ids)):
        query = by_key(accounts, ("account_id",), lock=True)
        row = execute(conn, query, {key("account_id"): account_id}).first()
        if row is None:
            raise NotFound(f"account {account_id!r} does not exist", reason="unknown_account")
        locked[account_id] = row
    return locked
