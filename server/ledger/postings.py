"""Double-entry postings: journal entries whose legs sum to zero in every currency.

Every entry carries an idempotency reference (terminal id + request id, e.g. the outbox
key), UNIQUE in the database: a repeat — a retry, or the same request reaching another
replica — gets the first entry back (``replayed=True``); the same reference with a
different request is refused. Account rows are locked (``SELECT … FOR UPDATE``, in id
order) before balances are read, so two withdrawals cannot both spend the same money;
the cached balance and each leg's running balance are written in the same transaction.

Legs are signed credit-positive: a deposit credits (+) the customer and debits (-) the
branch vault. Customer accounts never go below what active holds reserve.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import TypeVar

from sqlalchemy import Connection, Engine, Row, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from branchline.server.ledger import accounts as acc
from branchline.server.ledger.fx import convert, usable_rate_table
from branchline.server.ledger.money import (
    InvalidInput,
    LedgerSettings,
    NotFound,
    Refused,
    asset,
    format_amount,
    from_minor,
    parse_amount,
    to_decimal,
    to_minor,
)
from branchline.server.ledger.schema import (
    accounts,
    bill_holdings,
    holds,
    journal_entries,
    journal_legs,
)
from branchline.server.storage import write_transaction

DEPOSIT = "deposit"
WITHDRAWAL = "withdrawal"
BILL_DEPOSIT = "bill_deposit"
BILL_WITHDRAWAL = "bill_withdrawal"
REVERSAL = "reversal"
TRANSFER = "transfer"

MAX_REFERENCE = 128
MAX_DESCRIPTION = 200
MAX_INSTRUMENT = 32
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
    balance_after: Decimal


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
class BillDeposit:
    bill_id: str
    instrument: str  # e.g. bank_acceptance, commercial_acceptance
    maturity: date


@dataclass(frozen=True)
class HoldCapture:
    """The hold a posting captures: its reservation ends with the posting."""

    account_id: str
    amount_minor: int


def check_reference(reference: object, what: str) -> Reference:
    if not isinstance(reference, Reference):
        raise InvalidInput("invalid_argument", f"{what}.reference: a Reference is required")
    for name in ("terminal_id", "request_id"):
        acc.check_identifier(getattr(reference, name), f"{what}.reference.{name}", MAX_REFERENCE)
    return reference


def request_hash(payload: Mapping[str, object]) -> str:
    text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def run_write(engine: Engine, op: Callable[[Connection], T]) -> T:
    """Run ``op`` in a write transaction, again when a racing replica made it fail."""
    for attempt in range(ATTEMPTS):
        try:
            with write_transaction(engine) as conn:
                return op(conn)
        except (IntegrityError, OperationalError) as exc:
            retry = isinstance(exc, IntegrityError) or (
                getattr(exc.orig, "pgcode", None) in _RETRY_PGCODES
            )
            if not retry or attempt == ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


# --- reading entries ---


def _entry_row(conn: Connection, reference: Reference) -> Row | None:  # type: ignore[type-arg]
    return conn.execute(
        select(journal_entries).where(
            journal_entries.c.terminal_id == reference.terminal_id,
            journal_entries.c.request_id == reference.request_id,
        )
    ).first()


def load_posting(conn: Connection, entry: Row, replayed: bool) -> Posting:  # type: ignore[type-arg]
    legs = conn.execute(
        select(journal_legs)
        .where(journal_legs.c.entry_id == entry.entry_id)
        .order_by(journal_legs.c.leg_id)
    ).all()
    posted = []
    for leg in legs:
        of = asset(leg.currency, "leg.currency")
        posted.append(
            PostedLeg(
                leg.account_id,
                leg.currency,
                from_minor(leg.amount_minor, of),
                from_minor(leg.balance_after_minor, of),
            )
        )
    return Posting(
        entry_id=int(entry.entry_id),
        reference=Reference(entry.terminal_id, entry.request_id),
        kind=entry.kind,
        description=entry.description,
        posted_at=entry.posted_at,
        legs=tuple(posted),
        reverses_entry_id=entry.reverses_entry_id,
        rate_version=entry.rate_version_id,
        hold_id=entry.hold_id,
        replayed=replayed,
    )


def replay(conn: Connection, reference: Reference, digest: str) -> Posting | None:
    """The entry already posted under ``reference``, if any; refused if for another request."""
    row = _entry_row(conn, reference)
    if row is None:
        return None
    if row.request_hash != digest:
        raise Refused(
            "reference_reused",
            f"reference {reference}: already used for a different request (entry {row.entry_id})",
        )
    return load_posting(conn, row, replayed=True)


def find_posting(engine: Engine, reference: Reference) -> Posting | None:
    """What a terminal recovering a transaction asks: did this request post?"""
    with engine.connect() as conn:
        row = _entry_row(conn, reference)
        return load_posting(conn, row, replayed=True) if row is not None else None


def get_posting(engine: Engine, entry_id: int) -> Posting | None:
    with engine.connect() as conn:
        row = conn.execute(
            select(journal_entries).where(journal_entries.c.entry_id == entry_id)
        ).first()
        return load_posting(conn, row, replayed=True) if row is not None else None


# --- locking and writing, inside the caller's transaction ---


def expire_due_holds(conn: Connection, account_ids: Sequence[str], now: datetime) -> int:
    """End the holds past their expiry on these (already locked) accounts."""
    due = conn.execute(
        select(holds.c.hold_id, holds.c.account_id, holds.c.amount_minor)
        .where(
            holds.c.account_id.in_(account_ids),
            holds.c.status == "active",
            holds.c.expires_at <= now,
        )
        .with_for_update()
    ).all()
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
    """Lock the accounts (id order) and end their expired holds, so ``held`` is current."""
    locked = acc.lock_accounts(conn, account_ids)
    reserved = [a for a, row in locked.items() if row.customer_id is not None and row.held_minor]
    if reserved and expire_due_holds(conn, reserved, now):
        locked = acc.lock_accounts(conn, account_ids)
    return locked


def over_balance(
    field_name: str, account_id: str, wanted_minor: int, available_minor: int, currency: str
) -> Refused:
    of = asset(currency, "account.currency")
    return Refused(
        "insufficient_funds",
        f"{field_name}: amount over balance: {format_amount(from_minor(wanted_minor, of), of)} "
        f"is more than the {format_amount(from_minor(max(available_minor, 0), of), of)} "
        f"available in account {account_id}",
    )


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
    """Post ``legs`` against accounts the caller locked; refuse an overdraft of any of them."""
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
    entry_id = conn.execute(
        journal_entries.insert().values(
            terminal_id=reference.terminal_id,
            request_id=reference.request_id,
            request_hash=digest,
            kind=kind,
            description=description[:MAX_DESCRIPTION],
            reverses_entry_id=reverses,
            rate_version_id=rate_version,
            hold_id=hold_id,
            posted_at=now,
        )
    ).inserted_primary_key[0]  # type: ignore[index]
    rows = []
    for leg in legs:
        balance[leg.account_id] += leg.amount_minor
        rows.append(
            {
                "entry_id": entry_id,
                "account_id": leg.account_id,
                "currency": leg.currency,
                "amount_minor": leg.amount_minor,
                "balance_after_minor": balance[leg.account_id],
            }
        )
    conn.execute(journal_legs.insert(), rows)
    for account_id in set(net) | ({capture.account_id} if capture else set()):
        conn.execute(
            update(accounts)
            .where(accounts.c.account_id == account_id)
            .values(balance_minor=balance[account_id], held_minor=held[account_id])
        )
    entry = conn.execute(
        select(journal_entries).where(journal_entries.c.entry_id == entry_id)
    ).one()
    return load_posting(conn, entry, replayed=False)


def customer_account_row(
    conn: Connection, account_id: object, field_name: str, customer_id: str | None
) -> Row:  # type: ignore[type-arg]
    """A customer's account, refused when internal or (given ``customer_id``) another's."""
    acc.check_identifier(account_id, field_name)
    row = conn.execute(select(accounts).where(accounts.c.account_id == account_id)).first()
    if row is None:
        raise NotFound("unknown_account", f"{field_name}: account {account_id!r} does not exist")
    if row.customer_id is None:
        raise Refused("not_owner", f"{field_name}: {account_id} is an internal account of the bank")
    if customer_id is not None and row.customer_id != customer_id:
        raise Refused(
            "not_owner", f"{field_name}: account {account_id} belongs to another customer"
        )
    return row


def vault_kind(currency: str) -> str:
    return acc.VAULT_METAL if asset(currency, "currency").kind == "metal" else acc.VAULT_CASH


# --- deposits ---


def post_deposit(
    engine: Engine,
    reference: Reference,
    *,
    account_id: str,
    branch: str,
    currency: str,
    amount: object,
    now: datetime,
    settings: LedgerSettings,
    rate_version: int | None = None,
    bill: BillDeposit | None = None,
    customer_id: str | None = None,
    quoted_at: datetime | None = None,
) -> Posting:
    """Credit what the back office counted into the customer's account.

    ``currency``/``amount`` are what arrived (cash, grams of metal, or a bill's face value).
    Into an account of another currency it is converted at the quoted ``rate_version``
    (the customer sells at the bid). A bill goes into a ``bills`` account.

    ``quoted_at`` is when the customer was shown the quote (default ``now``): the rate
    version must have been usable then. A tube deposit is quoted when it is opened and
    posted once counted, possibly minutes later and after newer rates: the rate shown is
    still the rate posted.
    """
    check_reference(reference, "deposit")
    if quoted_at is not None and (quoted_at.tzinfo is None or quoted_at > now):
        raise InvalidInput(
            "invalid_argument", "deposit.quoted_at: an aware time no later than the posting"
        )
    acc.check_identifier(branch, "deposit.branch", acc.MAX_BRANCH)
    given = asset(currency, "deposit.currency")
    value = parse_amount(amount, given, "deposit.amount", settings)
    if bill is not None:
        _check_bill(bill, now)
    digest = request_hash(
        {
            "op": "deposit",
            "account": account_id,
            "branch": branch,
            "currency": given.code,
            "amount": str(value),
            "rate_version": rate_version,
            "bill": None if bill is None else [bill.bill_id, bill.instrument, str(bill.maturity)],
        }
    )

    def op(conn: Connection) -> Posting:
        first = replay(conn, reference, digest)
        if first is not None:
            return first
        row = customer_account_row(conn, account_id, "deposit.account_id", customer_id)
        target = asset(row.currency, "account.currency")
        if (row.kind == acc.BILLS) != (bill is not None):
            raise InvalidInput(
                "invalid_argument",
                "deposit.bill: a bill goes into a bills account, and a bills account takes bills",
            )
        value_minor = to_minor(value, given)
        version: int | None = None
        if given.code == target.code:
            description = f"deposit {format_amount(value, given)}"
        else:
            if bill is not None:
                raise InvalidInput(
                    "currency_mismatch",
                    f"deposit.currency: a {given.code} bill cannot go into a {target.code} bills account",
                )
            if rate_version is None:
                raise InvalidInput(
                    "rate_version_required",
                    f"deposit.rate_version: {given.code} into a {target.code} account is "
                    "converted; pass the version of the rates the customer was quoted",
                )
            table = usable_rate_table(conn, rate_version, quoted_at or now, settings)
            q = convert(table, given.code, target.code, value, "from", now, settings, "deposit")
            version = table.version_id
            credited_minor = to_minor(q.to_amount, target)
            description = (
                f"deposit {format_amount(value, given)} as {format_amount(q.to_amount, target)} "
                f"at {q.rate} (rates v{version})"
            )
        if bill is not None:
            description = (
                f"bill {bill.bill_id} ({bill.instrument}, matures {bill.maturity}) "
                f"{format_amount(value, given)}"
            )
            counter = acc.ensure_internal_account(conn, acc.BILLS_CUSTODY, branch, given.code, now)
            legs = [
                LegSpec(row.account_id, given.code, value_minor),
                LegSpec(counter, given.code, -value_minor),
            ]
        elif version is None:
            vault = acc.ensure_internal_account(
                conn, vault_kind(given.code), branch, given.code, now
            )
            legs = [
                LegSpec(row.account_id, given.code, value_minor),
                LegSpec(vault, given.code, -value_minor),
            ]
        else:
            vault = acc.ensure_internal_account(
                conn, vault_kind(given.code), branch, given.code, now
            )
            fx_given = acc.ensure_internal_account(conn, acc.FX_POSITION, branch, given.code, now)
            fx_target = acc.ensure_internal_account(conn, acc.FX_POSITION, branch, target.code, now)
            legs = [
                LegSpec(vault, given.code, -value_minor),
                LegSpec(fx_given, given.code, value_minor),
                LegSpec(fx_target, target.code, -credited_minor),
                LegSpec(row.account_id, target.code, credited_minor),
            ]
        locked = lock_for_posting(conn, [leg.account_id for leg in legs], now)
        first = replay(conn, reference, digest)
        if first is not None:
            return first
        if bill is not None:
            _ensure_bill_free(conn, bill.bill_id)
        posting = write_entry(
            conn,
            locked,
            reference,
            digest,
            BILL_DEPOSIT if bill is not None else DEPOSIT,
            description,
            legs,
            now,
            field_name="deposit.amount",
            rate_version=version,
        )
        if bill is not None:
            _store_bill(conn, bill, row, given.code, value_minor, posting.entry_id, now)
        return posting

    return run_write(engine, op)


def _check_bill(bill: BillDeposit, now: datetime) -> None:
    acc.check_identifier(bill.bill_id, "deposit.bill.bill_id")
    acc.check_identifier(bill.instrument, "deposit.bill.instrument", MAX_INSTRUMENT)
    if not isinstance(bill.maturity, date) or isinstance(bill.maturity, datetime):
        raise InvalidInput("invalid_argument", "deposit.bill.maturity: a date is required")
    if bill.maturity < now.date():
        raise InvalidInput(
            "bill_matured",
            f"deposit.bill.maturity: {bill.maturity} is past; a matured bill is presented for payment",
        )


def _ensure_bill_free(conn: Connection, bill_id: str) -> None:
    row = conn.execute(
        select(bill_holdings.c.status).where(bill_holdings.c.bill_id == bill_id).with_for_update()
    ).first()
    if row is not None and row.status == "held":
        raise Refused("bill_already_held", f"deposit.bill.bill_id: bill {bill_id} is already held")


def _store_bill(
    conn: Connection,
    bill: BillDeposit,
    account: Row,  # type: ignore[type-arg]
    currency: str,
    face_minor: int,
    entry_id: int,
    now: datetime,
) -> None:
    values = dict(
        instrument=bill.instrument,
        customer_id=account.customer_id,
        account_id=account.account_id,
        currency=currency,
        face_minor=face_minor,
        maturity=bill.maturity,
        status="held",
        hold_id=None,
        deposit_entry_id=entry_id,
        withdrawal_entry_id=None,
        updated_at=now,
    )
    exists = conn.execute(
        select(bill_holdings.c.bill_id).where(bill_holdings.c.bill_id == bill.bill_id)
    ).first()
    if exists is None:
        conn.execute(bill_holdings.insert().values(bill_id=bill.bill_id, **values))
    else:  # deposited again after an earlier withdrawal
        conn.execute(
            update(bill_holdings).where(bill_holdings.c.bill_id == bill.bill_id).values(**values)
        )


# --- reversals ---


def reverse(
    engine: Engine,
    reference: Reference,
    entry_id: int,
    reason: str,
    now: datetime,
    *,
    same_terminal: bool = False,
) -> Posting:
    """Post the opposite of ``entry_id`` — once: any later request gets that reversal back.

    With ``same_terminal`` only the terminal that posted the entry may reverse it.
    """
    check_reference(reference, "reversal")
    if isinstance(entry_id, bool) or not isinstance(entry_id, int) or entry_id <= 0:
        raise InvalidInput("invalid_argument", "reversal.entry_id: a positive entry id is required")
    acc.check_identifier(reason, "reversal.reason", MAX_DESCRIPTION)
    digest = request_hash({"op": "reverse", "entry": entry_id})

    def existing_reversal(conn: Connection) -> Posting | None:
        row = conn.execute(
            select(journal_entries).where(journal_entries.c.reverses_entry_id == entry_id)
        ).first()
        return load_posting(conn, row, replayed=True) if row is not None else None

    def op(conn: Connection) -> Posting:
        first = replay(conn, reference, digest) or existing_reversal(conn)
        if first is not None:
            return first
        original = conn.execute(
            select(journal_entries).where(journal_entries.c.entry_id == entry_id)
        ).first()
        if original is None:
            raise NotFound("unknown_entry", f"reversal.entry_id: entry {entry_id} does not exist")
        if original.reverses_entry_id is not None:
            raise Refused(
                "not_reversible",
                f"reversal.entry_id: entry {entry_id} is itself the reversal of entry "
                f"{original.reverses_entry_id}",
            )
        if same_terminal and original.terminal_id != reference.terminal_id:
            raise Refused(
                "not_owner", f"reversal.entry_id: entry {entry_id} was posted by another terminal"
            )
        legs = [
            LegSpec(leg.account_id, leg.currency, -leg.amount_minor)
            for leg in conn.execute(
                select(journal_legs)
                .where(journal_legs.c.entry_id == entry_id)
                .order_by(journal_legs.c.leg_id)
            )
        ]
        locked = lock_for_posting(conn, [leg.account_id for leg in legs], now)
        first = replay(conn, reference, digest) or existing_reversal(conn)
        if first is not None:
            return first
        bill = _bill_of(conn, original)
        posting = write_entry(
            conn,
            locked,
            reference,
            digest,
            REVERSAL,
            f"reversal of entry {entry_id}: {reason}",
            legs,
            now,
            field_name="reversal",
            reverses=entry_id,
            rate_version=original.rate_version_id,
        )
        if bill is not None:
            returned = original.kind == BILL_DEPOSIT
            conn.execute(
                update(bill_holdings)
                .where(bill_holdings.c.bill_id == bill)
                .values(
                    status="withdrawn" if returned else "held",
                    withdrawal_entry_id=posting.entry_id if returned else None,
                    updated_at=now,
                )
            )
        return posting

    return run_write(engine, op)


def _bill_of(conn: Connection, original: Row) -> str | None:  # type: ignore[type-arg]
    """The bill a bill entry moved, checked to be where the reversal needs it."""
    if original.kind not in (BILL_DEPOSIT, BILL_WITHDRAWAL):
        return None
    deposit = original.kind == BILL_DEPOSIT
    column = bill_holdings.c.deposit_entry_id if deposit else bill_holdings.c.withdrawal_entry_id
    row = conn.execute(
        select(bill_holdings).where(column == original.entry_id).with_for_update()
    ).first()
    if row is None or row.status != ("held" if deposit else "withdrawn") or row.hold_id:
        raise Refused(
            "bill_not_held" if deposit else "bill_not_withdrawn",
            f"reversal.entry_id: the bill of entry {original.entry_id} has moved since",
        )
    return str(row.bill_id)


# --- free transfers (adjustments, tests): legs given by the caller ---


def post_transfer(
    engine: Engine,
    reference: Reference,
    legs: Sequence[tuple[str, str, object]],
    description: str,
    now: datetime,
    settings: LedgerSettings,
) -> Posting:
    """Post legs (account, currency, signed amount) that must balance in every currency."""
    check_reference(reference, "transfer")
    acc.check_identifier(description, "transfer.description", MAX_DESCRIPTION)
    if len(legs) < 2:
        raise InvalidInput("invalid_argument", "transfer.legs: at least two legs are required")
    specs: list[LegSpec] = []
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for i, (account_id, currency, amount) in enumerate(legs):
        field_name = f"transfer.legs[{i}]"
        acc.check_identifier(account_id, f"{field_name}.account_id")
        of = asset(currency, f"{field_name}.currency")
        signed = to_decimal(amount, f"{field_name}.amount")
        value = parse_amount(abs(signed), of, f"{field_name}.amount", settings)
        minor = to_minor(value, of) * (1 if signed > 0 else -1)
        specs.append(LegSpec(account_id, of.code, minor))
        sums[of.code] += signed
    unbalanced = {c: s for c, s in sums.items() if s != 0}
    if unbalanced:
        shown = ", ".join(f"{c} {s:+}" for c, s in sorted(unbalanced.items()))
        raise InvalidInput("unbalanced", f"transfer.legs: do not sum to zero ({shown})")
    digest = request_hash(
        {"op": "transfer", "legs": [[s.account_id, s.currency, s.amount_minor] for s in specs]}
    )

    def op(conn: Connection) -> Posting:
        first = replay(conn, reference, digest)
        if first is not None:
            return first
        locked = lock_for_posting(conn, [s.account_id for s in specs], now)
        for i, spec in enumerate(specs):
            if locked[spec.account_id].currency != spec.currency:
                raise InvalidInput(
                    "currency_mismatch",
                    f"transfer.legs[{i}].currency: account {spec.account_id} holds "
                    f"{locked[spec.account_id].currency}, not {spec.currency}",
                )
        first = replay(conn, reference, digest)
        if first is not None:
            return first
        return write_entry(
            conn,
            locked,
            reference,
            digest,
            TRANSFER,
            description,
            specs,
            now,
            field_name="transfer.amount",
        )

    return run_write(engine, op)
