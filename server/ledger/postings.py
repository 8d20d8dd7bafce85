"""Double-entry postings: journal entries whose legs sum to zero in every currency.

Every entry carries an idempotency reference (terminal id + request id, e.g. the outbox
key), UNIQUE in the database: a repeat — a retry, or the same request reaching another
replica — gets the first entry back (``replayed=True``); the same reference with a
different request is refused. Customer account rows are locked (``SELECT … FOR UPDATE``, in
id order) before balances are read, so two withdrawals cannot both spend the same money;
the cached balance and each leg's running balance are written in the same transaction.
Legs on the bank's internal accounts (the branch vault ...) are inserted, and those
accounts locked and their balances written, when the transaction commits
(``internal_legs``): the vault's row is not held through a whole batch.

Legs are signed credit-positive: a deposit credits (+) the customer and debits (-) the
branch vault. Customer accounts never go below what active holds reserve.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any, TypeVar, cast

from sqlalchemy import Connection, Engine, Row, bindparam, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from branchline.common.errors import FailedPrecondition, InvalidArgument, NotFound
from branchline.server.ledger import accounts as acc
from branchline.server.ledger import internal_legs
from branchline.server.ledger.money import (
    asset,
    format_amount,
    from_minor,
)
from branchline.server.ledger.schema import (
    accounts,
    bill_holdings,
    holds,
    journal_entries,
    journal_legs,
)
from branchline.server.storage import write_transaction
from branchline.server.storage.engine import connect, in_batch
from branchline.server.storage.fastpath import execute
from branchline.server.storage.prebuilt import by_key, key, update_by_key

DEPOSIT = "deposit"
WITHDRAWAL = "withdrawal"
BILL_DEPOSIT = "bill_deposit"
BILL_WITHDRAWAL = "bill_withdrawal"
REVERSAL = "reversal"
TRANSFER = "transfer"

MAX_REFERENCE = 128
MAX_DESCRIPTION = 200
# Attempts of one posting when a racing replica wins a unique key or PostgreSQL picks it
# as a deadlock victim; the retry then finds the winner's entry and replays it.
ATTEMPTS = 3
_RETRY_PGCODES = {"40P01", "40001"}

T = TypeVar("T")


@dataclass(frozen=True)
class Reference:
    """The idempotency key: the terminal's id and its request (outbox) id."""

    terminal_id: str
    request_id: str

    def __str__(self) -> str:
        return f"{self.terminal_id}/{self.request_id}"


@dataclass(frozen=True)
class LegSpec:
    account_id: str
    currency: str
    amount_minor: int


@dataclass(frozen=True)
class PostedLeg:
    account_id: str
    currency: str
    amount: Decimal
    # None: an internal account's leg of a posting not committed yet (``internal_legs``).
    balance_after: Decimal | None


@dataclass(frozen=True)
class Posting:
    entry_id: int
    reference: Reference
    kind: str
    description: str
    posted_at: datetime
    legs: tuple[PostedLeg, ...]
    reverses_entry_id: int | None
    rate_version: int | None
    hold_id: str | None
    # True when this is the first answer to a repeated request: nothing was posted now.
    replayed: bool = False

    def leg(self, account_id: str) -> PostedLeg:
        for leg in self.legs:
            if leg.account_id == account_id:
                return leg
        raise KeyError(account_id)


@dataclass(frozen=True)
class HoldCapture:
    """The hold a posting captures: its reservation ends with the posting."""

    account_id: str
    amount_minor: int


def check_reference(reference: object, what: str) -> Reference:
    if not isinstance(reference, Reference):
        raise InvalidArgument(f"{what}.reference", "a Reference is required")
    for name in ("terminal_id", "request_id"):
        acc.check_identifier(getattr(reference, name), f"{what}.reference.{name}", MAX_REFERENCE)
    return reference


def request_hash(payload: Mapping[str, object]) -> str:
    text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def run_write(engine: Engine, op: Callable[[Connection], T]) -> T:
    """Run ``op`` in a write transaction, again when a racing replica made it fail.

    A posting it returns from a transaction of its own (not a batch's) has been committed:
    its internal legs' balances after are read back (``settled``)."""
    for attempt in range(ATTEMPTS):
        try:
            with write_transaction(engine) as conn:
                result = op(conn)
            if isinstance(result, Posting):
                return cast(T, settled(engine, result))
            return result
        except (IntegrityError, OperationalError) as exc:
            retry = isinstance(exc, IntegrityError) or (
                getattr(exc.orig, "pgcode", None) in _RETRY_PGCODES
            )
            if not retry or attempt == ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


# --- reading entries ---


def _entry_row(conn: Connection, reference: Reference) -> Row | None:  # type: ignore[type-arg]
    return execute(
        conn,
        by_key(journal_entries, ("terminal_id", "request_id")),
        {key("terminal_id"): reference.terminal_id, key("request_id"): reference.request_id},
    ).first()


def load_posting(
    conn: Connection,
    entry: Row,  # type: ignore[type-arg]
    replayed: bool,
    legs: Sequence[Any] | None = None,
) -> Posting:
    """The posting of ``entry``; ``legs``: its legs as just written (in order), not read."""
    if legs is None:
        legs = entry_legs(conn, int(entry.entry_id))
    return Posting(
        entry_id=int(entry.entry_id),
        reference=Reference(entry.terminal_id, entry.request_id),
        kind=entry.kind,
        description=entry.description,
        posted_at=entry.posted_at,
        legs=_posted_legs(legs),
        reverses_entry_id=entry.reverses_entry_id,
        rate_version=entry.rate_version_id,
        hold_id=entry.hold_id,
        replayed=replayed,
    )


def _posted_legs(legs: Sequence[Any]) -> tuple[PostedLeg, ...]:
    posted = []
    for leg in legs:
        of = asset(leg.currency, "leg.currency")
        after = leg.balance_after_minor
        posted.append(
            PostedLeg(
                leg.account_id,
                leg.currency,
                from_minor(leg.amount_minor, of),
                None if after is None else from_minor(after, of),
            )
        )
    return tuple(posted)


def settled(engine: Engine, posting: Posting) -> Posting:
    """``posting`` with its internal legs' balances after, once its transaction committed
    (inside a batch on this thread it has not: returned as it is)."""
    if all(leg.balance_after is not None for leg in posting.legs) or in_batch(engine):
        return posting
    with connect(engine) as conn:
        return replace(posting, legs=_posted_legs(entry_legs(conn, posting.entry_id)))


def entry_legs(conn: Connection, entry_id: int) -> list[Any]:
    """The entry's legs in leg id order, then (posted in this transaction and not committed
    yet) its legs on internal accounts, in their order."""
    legs: list[Any] = execute(
        conn,
        by_key(journal_legs, ("entry_id",), order_by=("leg_id",)),
        {key("entry_id"): entry_id},
    ).all()
    return legs + internal_legs.pending(conn, entry_id)


def replay(conn: Connection, reference: Reference, digest: str) -> Posting | None:
    """The entry already posted under ``reference``, if any; refused if for another request."""
    row = _entry_row(conn, reference)
    if row is None:
        return None
    if row.request_hash != digest:
        raise FailedPrecondition(
            f"reference {reference}: already used for a different request (entry {row.entry_id})",
            field="reference",
            reason="reference_reused",
        )
    return load_posting(conn, row, replayed=True)


def find_posting(engine: Engine, reference: Reference) -> Posting | None:
    """What a terminal recovering a transaction asks: did this request post?"""
    with connect(engine) as conn:
        row = _entry_row(conn, reference)
        return load_posting(conn, row, replayed=True) if row is not None else None


# --- locking and writing, inside the caller's transaction ---


# Built once (``storage.prebuilt``).
# One account a statement: no expanding IN, so it runs on the fast path (a posting locks one
# customer account, and this runs in every capture).
_DUE_HOLDS = (
    select(holds.c.hold_id, holds.c.account_id, holds.c.amount_minor)
    .where(
        holds.c.account_id == bindparam("id"),
        holds.c.status == "active",
        holds.c.expires_at <= bindparam("now"),
    )
    .with_for_update()
)


def expire_due_holds(conn: Connection, account_ids: Sequence[str], now: datetime) -> int:
    """End the holds past their expiry on these (already locked) accounts."""
    due = [
        hold
        for account_id in account_ids
        for hold in execute(conn, _DUE_HOLDS, {"id": account_id, "now": now}).all()
    ]
    for hold in due:
        conn.execute(
            update(holds)
            .where(holds.c.hold_id == hold.hold_id)
            .values(status="expired", closed_at=now, reason="expired")
        )
        conn.execute(
            update(accounts)
            .where(accounts.c.account_id == hold.account_id)
            .values(held_minor=accounts.c.held_minor - hold.amount_minor)
        )
        conn.execute(
            update(bill_holdings)
            .where(bill_holdings.c.hold_id == hold.hold_id)
            .values(hold_id=None, updated_at=now)
        )
    return len(due)


def lock_for_posting(conn: Connection, account_ids: Sequence[str], now: datetime) -> dict[str, Row]:  # type: ignore[type-arg]
    """Lock the customer accounts (id order) and end their expired holds, so ``held`` is
    current. Internal accounts are read, not locked: their legs wait for the commit
    (``internal_legs``), which locks them then."""
    customer = [a for a in account_ids if not acc.is_internal_id(a)]
    locked = acc.lock_accounts(conn, customer)
    reserved = [a for a, row in locked.items() if row.customer_id is not None and row.held_minor]
    if reserved and expire_due_holds(conn, reserved, now):
        locked = acc.lock_accounts(conn, customer)
    for account_id in sorted({a for a in account_ids if acc.is_internal_id(a)}):
        row = execute(conn, by_key(accounts, ("account_id",)), {key("account_id"): account_id})
        found = row.first()
        if found is None:
            raise NotFound(f"account {account_id!r} does not exist", reason="unknown_account")
        locked[account_id] = found
    return locked


def over_balance(
    field_name: str, account_id: str, wanted_minor: int, available_minor: int, currency: str
) -> FailedPrecondition:
    of = asset(currency, "account.currency")
    return FailedPrecondition(
        f"{field_name}: amount over balance: {format_amount(from_minor(wanted_minor, of), of)} is "
        f"more than the {format_amount(from_minor(max(available_minor, 0), of), of)} available in "
        f"account {account_id}",
        field=field_name,
        reason="insufficient_funds",
    )


def _check_balanced(locked: Mapping[str, Row], legs: Sequence[LegSpec]) -> None:  # type: ignore[type-arg]
    """The caller's legs are a bug, not a refusal, when they are zero, in the wrong
    currency for their account, or do not sum to zero in every currency."""
    sums: dict[str, int] = defaultdict(int)
    for leg in legs:
        if leg.amount_minor == 0:
            raise ValueError(f"zero leg on {leg.account_id}")
        if locked[leg.account_id].currency != leg.currency:
            raise ValueError(
                f"leg in {leg.currency} on a {locked[leg.account_id].currency} account"
            )
        sums[leg.currency] += leg.amount_minor
    if not legs or any(sums.values()):
        raise ValueError(f"legs do not balance: {dict(sums)}")


def _covered(
    locked: Mapping[str, Row],  # type: ignore[type-arg]
    legs: Sequence[LegSpec],
    capture: HoldCapture | None,
    field_name: str,
) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """Balances, held amounts (less a captured hold) and each account's net change; refused
    when a customer account would go below what its holds reserve."""
    balance = {a: int(row.balance_minor) for a, row in locked.items()}
    held = {a: int(row.held_minor) for a, row in locked.items()}
    if capture is not None:
        held[capture.account_id] -= capture.amount_minor
    net: dict[str, int] = defaultdict(int)
    for leg in legs:
        net[leg.account_id] += leg.amount_minor
    for account_id, change in net.items():
        row = locked[account_id]
        available = balance[account_id] - held[account_id]
        if row.customer_id is not None and change < 0 and available + change < 0:
            raise over_balance(field_name, account_id, -change, available, row.currency)
    return balance, held, net


def write_entry(
    conn: Connection,
    locked: Mapping[str, Row],  # type: ignore[type-arg]
    reference: Reference,
    digest: str,
    kind: str,
    description: str,
    legs: Sequence[LegSpec],
    now: datetime,
    *,
    field_name: str,
    reverses: int | None = None,
    rate_version: int | None = None,
    hold_id: str | None = None,
    capture: HoldCapture | None = None,
) -> Posting:
    """Post ``legs`` against accounts the caller locked (``lock_for_posting``); refuse an
    overdraft of any of them. The legs on internal accounts are inserted, and their
    balances written, at the commit (``internal_legs``): the posting's legs are the
    customers' first, then the internal ones, each group in the given order."""
    _check_balanced(locked, legs)
    balance, held, net = _covered(locked, legs, capture, field_name)
    entry = execute(
        conn,
        _INSERT_ENTRY,
        {
            "terminal_id": reference.terminal_id,
            "request_id": reference.request_id,
            "request_hash": digest,
            "kind": kind,
            "description": description[:MAX_DESCRIPTION],
            "reverses_entry_id": reverses,
            "rate_version_id": rate_version,
            "hold_id": hold_id,
            "posted_at": now,
        },
    ).one()
    rows, later = _leg_rows(entry.entry_id, legs, balance)
    if rows:
        execute(conn, _INSERT_LEGS, rows)
    internal_legs.post_at_commit(conn, later)
    changed = {r["account_id"] for r in rows} | ({capture.account_id} if capture else set())
    for account_id in changed:
        execute(
            conn,
            update_by_key(accounts, "account_id"),
            {
                "balance_minor": balance[account_id],
                "held_minor": held[account_id],
                key("account_id"): account_id,
            },
        )
    written = [SimpleNamespace(**r) for r in rows]
    written += [SimpleNamespace(**r, balance_after_minor=None) for r in later]
    return load_posting(conn, entry, replayed=False, legs=written)


def _leg_rows(
    entry_id: int, legs: Sequence[LegSpec], balance: dict[str, int]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The customer legs' rows with running balances (``balance`` is advanced), and the
    internal legs' rows, whose balances are settled at commit (``internal_legs``)."""
    rows, later = [], []
    for leg in legs:
        row: dict[str, Any] = {
            "entry_id": entry_id,
            "account_id": leg.account_id,
            "currency": leg.currency,
            "amount_minor": leg.amount_minor,
        }
        if acc.is_internal_id(leg.account_id):
            later.append(row)
            continue
        balance[leg.account_id] += leg.amount_minor
        rows.append({**row, "balance_after_minor": balance[leg.account_id]})
    return rows, later


# Built once (``storage.prebuilt``); the entry comes back with its id (RETURNING).
_INSERT_ENTRY = journal_entries.insert().returning(*journal_entries.c)
_INSERT_LEGS = journal_legs.insert()


def customer_account_row(
    conn: Connection, account_id: object, field_name: str, customer_id: str | None
) -> Row:  # type: ignore[type-arg]
    """A customer's account, refused when internal or (given ``customer_id``) another's."""
    acc.check_identifier(account_id, field_name)
    query = by_key(accounts, ("account_id",))
    row = execute(conn, query, {key("account_id"): account_id}).first()
    if row is None:
        raise NotFound(
            f"{field_name}: account {account_id!r} does not exist",
            field=field_name,
            reason="unknown_account",
        )
    if row.customer_id is None:
        raise FailedPrecondition(
            f"{field_name}: {account_id} is an internal account of the bank",
            field=field_name,
            reason="not_owner",
        )
    if customer_id is not None and row.customer_id != customer_id:
        raise FailedPrecondition(
            f"{field_name}: account {account_id} belongs to another customer",
            field=field_name,
            reason="not_owner",
        )
    return row


def vault_kind(currency: str) -> str:
    return acc.VAULT_METAL if asset(currency, "currency").kind == "metal" else acc.VAULT_CASH
