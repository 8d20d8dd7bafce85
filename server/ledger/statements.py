"""Statements and balances (self-service bookkeeping), and the ledger's own audit.

A statement row is one leg on the account: when, what, the signed amount and the balance
right after it — the running balance was written with the leg, under the account's lock.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Engine, func, select

from branchline.common.errors import InvalidArgument, NotFound
from branchline.server.ledger.accounts import (
    Account,
    account_from_row,
    check_identifier,
    customer_accounts,
)
from branchline.server.ledger.money import asset, from_minor
from branchline.server.ledger.schema import (
    accounts,
    customers,
    holds,
    journal_entries,
    journal_legs,
)
from branchline.server.storage.engine import connect
from branchline.server.storage.fastpath import execute
from branchline.server.storage.prebuilt import by_key, key

MAX_STATEMENT_ROWS = 500


@dataclass(frozen=True)
class StatementRow:
    entry_id: int
    at: datetime
    kind: str
    description: str
    amount: Decimal  # signed: + credit (money in), - debit
    balance_after: Decimal


@dataclass(frozen=True)
class Statement:
    account: Account  # as it is now (balance, held, available)
    opening_balance: Decimal  # before the first row
    rows: tuple[StatementRow, ...]  # oldest first: the last ``limit`` postings since ``since``


def statement(
    engine: Engine, account_id: str, limit: int = 20, since: datetime | None = None
) -> Statement:
    check_identifier(account_id, "statement.account_id")
    if (
        isinstance(limit, bool)
        or not isinstance(limit, int)
        or not 1 <= limit <= MAX_STATEMENT_ROWS
    ):
        raise InvalidArgument("statement.limit", f"{limit!r} is not 1 to {MAX_STATEMENT_ROWS}")
    if since is not None and since.tzinfo is None:
        raise InvalidArgument("statement.since", "a timezone-aware time is needed")
    with connect(engine) as conn:
        row = conn.execute(select(accounts).where(accounts.c.account_id == account_id)).first()
        if row is None:
            raise NotFound(
                f"statement.account_id: {account_id!r} does not exist",
                field="statement.account_id",
                reason="unknown_account",
            )
        query = (
            select(
                journal_legs.c.entry_id,
                journal_legs.c.amount_minor,
                journal_legs.c.balance_after_minor,
                journal_entries.c.posted_at,
                journal_entries.c.kind,
                journal_entries.c.description,
            )
            .join(journal_entries, journal_entries.c.entry_id == journal_legs.c.entry_id)
            .where(journal_legs.c.account_id == account_id)
        )
        if since is not None:
            query = query.where(journal_entries.c.posted_at >= since)
        legs = conn.execute(query.order_by(journal_legs.c.leg_id.desc()).limit(limit)).all()
    account = account_from_row(row)
    of = asset(account.currency, "account.currency")
    rows = tuple(
        StatementRow(
            entry_id=int(leg.entry_id),
            at=leg.posted_at,
            kind=leg.kind,
            description=leg.description,
            amount=from_minor(leg.amount_minor, of),
            balance_after=from_minor(leg.balance_after_minor, of),
        )
        for leg in reversed(legs)
    )
    opening = rows[0].balance_after - rows[0].amount if rows else account.balance
    return Statement(account=account, opening_balance=opening, rows=rows)


def balances(engine: Engine, customer_id: str) -> list[Account]:
    """Every account of the customer with its balance, held and available amounts."""
    with connect(engine) as conn:
        found = customer_accounts(conn, customer_id)
        if found:  # an account's customer exists (foreign key): no need to look
            return found
        query = by_key(customers, ("customer_id",), ("customer_id",))
        if execute(conn, query, {key("customer_id"): customer_id}).first() is None:
            raise NotFound(
                f"balances.customer_id: {customer_id!r} does not exist",
                field="balances.customer_id",
                reason="unknown_customer",
            )
        return []


def customer_account(engine: Engine, customer_id: str, account_id: str) -> Account | None:
    """One account of the customer with its balance, held and available amounts; None when
    it is not theirs (or does not exist). Read by the account's key: inside a group-commit
    batch on SQLite the same read as the postings' lock, answered from the batch's cache
    (``storage/batch.py``) where ``balances`` is a read of its own each time."""
    with connect(engine) as conn:
        row = execute(conn, by_key(accounts, ("account_id",)), {key("account_id"): account_id})
        found = row.first()
        if found is not None and found.customer_id == customer_id:
            return account_from_row(found)
    balances(engine, customer_id)  # refuses an unknown customer, as balances does
    return None


def audit(engine: Engine) -> list[str]:
    """What is inconsistent in the ledger; an empty list when every invariant holds.

    Every entry sums to zero per currency; every cached balance equals the sum of its legs
    and the last running balance; every held amount equals its active holds; no customer
    account is below what it reserves; running balances chain leg by leg.
    """
    problems: list[str] = []
    with connect(engine) as conn:
        unbalanced = conn.execute(
            select(
                journal_legs.c.entry_id,
                journal_legs.c.currency,
                func.sum(journal_legs.c.amount_minor),
            )
            .group_by(journal_legs.c.entry_id, journal_legs.c.currency)
            .having(func.sum(journal_legs.c.amount_minor) != 0)
        ).all()
        problems += [f"entry {e}: {c} legs sum to {s}" for e, c, s in unbalanced]
        account_rows = {r.account_id: r for r in conn.execute(select(accounts))}
        held: dict[str, int] = defaultdict(int)
        for account_id, amount in conn.execute(
            select(holds.c.account_id, holds.c.amount_minor).where(holds.c.status == "active")
        ):
            held[account_id] += int(amount)
        running: dict[str, int] = defaultdict(int)
        for leg in conn.execute(select(journal_legs).order_by(journal_legs.c.leg_id)):
            running[leg.account_id] += int(leg.amount_minor)
            if running[leg.account_id] != leg.balance_after_minor:
                problems.append(
                    f"leg {leg.leg_id}: balance after {leg.balance_after_minor}, "
                    f"legs sum to {running[leg.account_id]}"
                )
            if leg.currency != account_rows[leg.account_id].currency:
                problems.append(
                    f"leg {leg.leg_id}: {leg.currency} on a "
                    f"{account_rows[leg.account_id].currency} account"
                )
    for account_id, row in account_rows.items():
        if row.balance_minor != running[account_id]:
            problems.append(
                f"account {account_id}: balance {row.balance_minor}, legs sum to "
                f"{running[account_id]}"
            )
        if row.held_minor != held[account_id]:
            problems.append(
                f"account {account_id}: held {row.held_minor}, active holds {held[account_id]}"
            )
        if row.customer_id is not None and row.balance_minor - row.held_minor < 0:
            problems.append(f"account {account_id}: available is negative")
    return problems
