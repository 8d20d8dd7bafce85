"""Withdrawal holds: authorise against the balance, then capture (post) or release.

``authorise_withdrawal`` reserves the amount (refusing an overdraft under the account's
row lock) and fixes everything the posting will use: the dispensed asset and amount, and
the rate version of a foreign-currency withdrawal, so the customer is debited exactly what
was shown even if rates change while the carrier travels. ``capture_hold`` posts it once;
``release_hold`` ends an uncompleted one once (a second release changes nothing). A hold
past ``expires_at`` stops reserving; capturing it still works if the balance covers it.

Lock order everywhere: account rows (by id), then the hold row, then the bill row.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Connection, Engine, Row, select, update

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
    to_minor,
)
from branchline.server.ledger.postings import (
    BILL_WITHDRAWAL,
    MAX_DESCRIPTION,
    WITHDRAWAL,
    HoldCapture,
    LegSpec,
    Posting,
    Reference,
    check_reference,
    customer_account_row,
    expire_due_holds,
    load_posting,
    lock_for_posting,
    over_balance,
    replay,
    request_hash,
    run_write,
    vault_kind,
    write_entry,
)
from branchline.server.ledger.schema import accounts, bill_holdings, holds, journal_entries

ACTIVE = "active"
CAPTURED = "captured"
RELEASED = "released"
EXPIRED = "expired"


@dataclass(frozen=True)
class Hold:
    hold_id: str
    reference: Reference
    account_id: str
    branch: str
    currency: str  # the account's currency: what is debited
    amount: Decimal
    dispensed_currency: str  # what the customer receives
    dispensed_amount: Decimal
    rate_version: int | None
    bill_id: str | None
    status: str  # active, captured, released, expired
    created_at: datetime
    expires_at: datetime
    closed_at: datetime | None
    entry_id: int | None
    reason: str | None
    replayed: bool = False


@dataclass(frozen=True)
class HoldRelease:
    hold: Hold
    released: bool  # False: it had already ended (released or expired), nothing changed


def _hold(row: Row, replayed: bool = False) -> Hold:  # type: ignore[type-arg]
    debit = asset(row.currency, "hold.currency")
    dispensed = asset(row.dispensed_currency, "hold.dispensed_currency")
    return Hold(
        hold_id=row.hold_id,
        reference=Reference(row.terminal_id, row.request_id),
        account_id=row.account_id,
        branch=row.branch,
        currency=row.currency,
        amount=from_minor(row.amount_minor, debit),
        dispensed_currency=row.dispensed_currency,
        dispensed_amount=from_minor(row.dispensed_minor, dispensed),
        rate_version=row.rate_version_id,
        bill_id=row.bill_id,
        status=row.status,
        created_at=row.created_at,
        expires_at=row.expires_at,
        closed_at=row.closed_at,
        entry_id=row.entry_id,
        reason=row.reason,
        replayed=replayed,
    )


def _hold_row(conn: Connection, hold_id: object, field_name: str, lock: bool = False) -> Row:  # type: ignore[type-arg]
    acc.check_identifier(hold_id, field_name)
    query = select(holds).where(holds.c.hold_id == hold_id)
    row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        raise NotFound("unknown_hold", f"{field_name}: hold {hold_id!r} does not exist")
    return row


def get_hold(engine: Engine, hold_id: str) -> Hold | None:
    with engine.connect() as conn:
        row = conn.execute(select(holds).where(holds.c.hold_id == hold_id)).first()
    return _hold(row) if row is not None else None


def authorise_withdrawal(
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
    bill_id: str | None = None,
    customer_id: str | None = None,
) -> Hold:
    """Reserve a withdrawal of ``amount`` ``currency`` (what the customer will receive).

    From an account of another currency the debit is converted at ``rate_version`` (the
    customer buys at the ask). From a bills account, name the bill; ``currency`` and
    ``amount`` must be its currency and face value.
    """
    check_reference(reference, "withdrawal")
    acc.check_identifier(branch, "withdrawal.branch", acc.MAX_BRANCH)
    dispensed = asset(currency, "withdrawal.currency")
    value = parse_amount(amount, dispensed, "withdrawal.amount", settings)
    if bill_id is not None:
        acc.check_identifier(bill_id, "withdrawal.bill_id")
    digest = request_hash(
        {
            "op": "authorise",
            "account": account_id,
            "branch": branch,
            "currency": dispensed.code,
            "amount": str(value),
            "rate_version": rate_version,
            "bill": bill_id,
        }
    )

    def op(conn: Connection) -> Hold:
        first = _replayed_hold(conn, reference, digest)
        if first is not None:
            return first
        row = customer_account_row(conn, account_id, "withdrawal.account_id", customer_id)
        debit = asset(row.currency, "account.currency")
        if (row.kind == acc.BILLS) != (bill_id is not None):
            raise InvalidInput(
                "invalid_argument",
                "withdrawal.bill_id: bills come out of a bills account, and only bills do",
            )
        version: int | None = None
        if dispensed.code == debit.code:
            debit_amount = value
        else:
            if rate_version is None:
                raise InvalidInput(
                    "rate_version_required",
                    f"withdrawal.rate_version: {dispensed.code} from a {debit.code} account is "
                    "converted; pass the version of the rates the customer was quoted",
                )
            table = usable_rate_table(conn, rate_version, now, settings)
            q = convert(table, debit.code, dispensed.code, value, "to", now, settings, "withdrawal")
            version = table.version_id
            debit_amount = q.from_amount
        debit_minor = to_minor(debit_amount, debit)
        locked = lock_for_posting(conn, [row.account_id], now)
        first = _replayed_hold(conn, reference, digest)
        if first is not None:
            return first
        if bill_id is not None:
            _reserve_bill_check(
                conn, bill_id, row.account_id, dispensed.code, to_minor(value, dispensed)
            )
        current = locked[row.account_id]
        available = int(current.balance_minor) - int(current.held_minor)
        if debit_minor > available:
            raise over_balance(
                "withdrawal.amount", row.account_id, debit_minor, available, debit.code
            )
        hold_id = uuid.uuid4().hex
        conn.execute(
            holds.insert().values(
                hold_id=hold_id,
                terminal_id=reference.terminal_id,
                request_id=reference.request_id,
                request_hash=digest,
                account_id=row.account_id,
                branch=branch,
                currency=debit.code,
                amount_minor=debit_minor,
                dispensed_currency=dispensed.code,
                dispensed_minor=to_minor(value, dispensed),
                rate_version_id=version,
                bill_id=bill_id,
                status=ACTIVE,
                created_at=now,
                expires_at=now + settings.hold_ttl,
                closed_at=None,
                entry_id=None,
                reason=None,
            )
        )
        conn.execute(
            update(accounts)
            .where(accounts.c.account_id == row.account_id)
            .values(held_minor=accounts.c.held_minor + debit_minor)
        )
        if bill_id is not None:
            conn.execute(
                update(bill_holdings)
                .where(bill_holdings.c.bill_id == bill_id)
                .values(hold_id=hold_id, updated_at=now)
            )
        return _hold(_hold_row(conn, hold_id, "hold_id"))

    return run_write(engine, op)


def _replayed_hold(conn: Connection, reference: Reference, digest: str) -> Hold | None:
    row = conn.execute(
        select(holds).where(
            holds.c.terminal_id == reference.terminal_id,
            holds.c.request_id == reference.request_id,
        )
    ).first()
    if row is None:
        return None
    if row.request_hash != digest:
        raise Refused(
            "reference_reused",
            f"reference {reference}: already used for a different request (hold {row.hold_id})",
        )
    return _hold(row, replayed=True)


def _reserve_bill_check(
    conn: Connection, bill_id: str, account_id: str, currency: str, face_minor: int
) -> None:
    bill = conn.execute(
        select(bill_holdings).where(bill_holdings.c.bill_id == bill_id).with_for_update()
    ).first()
    if bill is None or bill.status != "held" or bill.account_id != account_id:
        raise NotFound(
            "unknown_bill",
            f"withdrawal.bill_id: bill {bill_id!r} is not held in account {account_id}",
        )
    if bill.hold_id is not None:
        raise Refused(
            "bill_reserved", f"withdrawal.bill_id: bill {bill_id} is already being withdrawn"
        )
    if (bill.currency, int(bill.face_minor)) != (currency, face_minor):
        of = asset(bill.currency, "bill.currency")
        raise InvalidInput(
            "invalid_argument",
            f"withdrawal.amount: bill {bill_id} has a face value of "
            f"{format_amount(from_minor(bill.face_minor, of), of)}",
        )


def _capture_legs(conn: Connection, hold: Row, now: datetime) -> list[LegSpec]:  # type: ignore[type-arg]
    debit, dispensed = hold.currency, hold.dispensed_currency
    account = hold.account_id
    if hold.bill_id is not None:
        custody = acc.ensure_internal_account(conn, acc.BILLS_CUSTODY, hold.branch, debit, now)
        return [
            LegSpec(account, debit, -hold.amount_minor),
            LegSpec(custody, debit, hold.amount_minor),
        ]
    vault = acc.ensure_internal_account(conn, vault_kind(dispensed), hold.branch, dispensed, now)
    if debit == dispensed:
        return [
            LegSpec(account, debit, -hold.amount_minor),
            LegSpec(vault, debit, hold.amount_minor),
        ]
    fx_debit = acc.ensure_internal_account(conn, acc.FX_POSITION, hold.branch, debit, now)
    fx_dispensed = acc.ensure_internal_account(conn, acc.FX_POSITION, hold.branch, dispensed, now)
    return [
        LegSpec(account, debit, -hold.amount_minor),
        LegSpec(fx_debit, debit, hold.amount_minor),
        LegSpec(fx_dispensed, dispensed, -hold.dispensed_minor),
        LegSpec(vault, dispensed, hold.dispensed_minor),
    ]


def capture_hold(engine: Engine, reference: Reference, hold_id: str, now: datetime) -> Posting:
    """Post the withdrawal a hold authorised, once; a repeat returns that posting.

    Only the terminal that authorised the hold may capture it.
    """
    check_reference(reference, "capture")
    digest = request_hash({"op": "capture", "hold": hold_id})

    def op(conn: Connection) -> Posting:
        first = replay(conn, reference, digest)
        if first is not None:
            return first
        hold = _hold_row(conn, hold_id, "capture.hold_id")
        if hold.terminal_id != reference.terminal_id:
            raise Refused(
                "not_owner", f"capture.hold_id: hold {hold_id} was authorised by another terminal"
            )
        legs = _capture_legs(conn, hold, now)
        locked = lock_for_posting(conn, [leg.account_id for leg in legs], now)
        hold = _hold_row(conn, hold_id, "capture.hold_id", lock=True)
        first = replay(conn, reference, digest)
        if first is not None:
            return first
        if hold.status == CAPTURED:
            entry = conn.execute(
                select(journal_entries).where(journal_entries.c.entry_id == hold.entry_id)
            ).one()
            return load_posting(conn, entry, replayed=True)
        if hold.status == RELEASED:
            raise Refused(
                "hold_released",
                f"capture.hold_id: hold {hold_id} was released ({hold.reason}); authorise again",
            )
        active = hold.status == ACTIVE
        if hold.bill_id is not None:
            bill = conn.execute(
                select(bill_holdings)
                .where(bill_holdings.c.bill_id == hold.bill_id)
                .with_for_update()
            ).first()
            if bill is None or bill.status != "held" or bill.hold_id not in (None, hold_id):
                raise Refused(
                    "hold_expired",
                    f"capture.hold_id: hold {hold_id} expired and its bill has moved",
                )
        debit = asset(hold.currency, "hold.currency")
        dispensed = asset(hold.dispensed_currency, "hold.dispensed_currency")
        amount = format_amount(from_minor(hold.dispensed_minor, dispensed), dispensed)
        description = (
            f"bill {hold.bill_id} withdrawn ({amount})" if hold.bill_id else f"withdrawal {amount}"
        )
        if hold.dispensed_currency != hold.currency:
            description += (
                f" for {format_amount(from_minor(hold.amount_minor, debit), debit)}"
                f" (rates v{hold.rate_version_id})"
            )
        try:
            posting = write_entry(
                conn,
                locked,
                reference,
                digest,
                BILL_WITHDRAWAL if hold.bill_id else WITHDRAWAL,
                description,
                legs,
                now,
                field_name="capture",
                rate_version=hold.rate_version_id,
                hold_id=hold_id,
                capture=HoldCapture(hold.account_id, int(hold.amount_minor)) if active else None,
            )
        except Refused as exc:
            if exc.code != "insufficient_funds":
                raise
            raise Refused(
                "hold_expired",
                f"capture.hold_id: hold {hold_id} expired at {hold.expires_at.isoformat()} and "
                f"the balance no longer covers it: {exc.message}",
            ) from exc
        conn.execute(
            update(holds)
            .where(holds.c.hold_id == hold_id)
            .values(status=CAPTURED, entry_id=posting.entry_id, closed_at=now)
        )
        if hold.bill_id is not None:
            conn.execute(
                update(bill_holdings)
                .where(bill_holdings.c.bill_id == hold.bill_id)
                .values(
                    status="withdrawn",
                    hold_id=None,
                    withdrawal_entry_id=posting.entry_id,
                    updated_at=now,
                )
            )
        return posting

    return run_write(engine, op)


def release_hold(
    engine: Engine,
    hold_id: str,
    reason: str,
    now: datetime,
    terminal_id: str | None = None,
) -> HoldRelease:
    """End an uncompleted hold, exactly once; refused once it was captured (reverse instead).

    With ``terminal_id`` only that terminal's holds may be released (None: the back office).
    """
    acc.check_identifier(reason, "release.reason", MAX_DESCRIPTION)

    def op(conn: Connection) -> HoldRelease:
        hold = _hold_row(conn, hold_id, "release.hold_id")
        if terminal_id is not None and hold.terminal_id != terminal_id:
            raise Refused(
                "not_owner", f"release.hold_id: hold {hold_id} was authorised by another terminal"
            )
        lock_for_posting(conn, [hold.account_id], now)
        hold = _hold_row(conn, hold_id, "release.hold_id", lock=True)
        if hold.status == CAPTURED:
            raise Refused(
                "hold_captured",
                f"release.hold_id: hold {hold_id} was captured by entry {hold.entry_id}; "
                "reverse that entry instead",
            )
        if hold.status != ACTIVE:
            return HoldRelease(_hold(hold), released=False)
        conn.execute(
            update(holds)
            .where(holds.c.hold_id == hold_id)
            .values(status=RELEASED, closed_at=now, reason=reason)
        )
        conn.execute(
            update(accounts)
            .where(accounts.c.account_id == hold.account_id)
            .values(held_minor=accounts.c.held_minor - hold.amount_minor)
        )
        conn.execute(
            update(bill_holdings)
            .where(bill_holdings.c.hold_id == hold_id)
            .values(hold_id=None, updated_at=now)
        )
        return HoldRelease(_hold(_hold_row(conn, hold_id, "release.hold_id")), released=True)

    return run_write(engine, op)


def expire_holds(engine: Engine, now: datetime) -> int:
    """Sweep: end every hold past its expiry (postings also do this for the accounts they lock)."""

    def op(conn: Connection) -> int:
        due = (
            conn.execute(
                select(holds.c.account_id)
                .where(holds.c.status == ACTIVE, holds.c.expires_at <= now)
                .distinct()
            )
            .scalars()
            .all()
        )
        if not due:
            return 0
        locked = acc.lock_accounts(conn, due)
        return expire_due_holds(conn, list(locked), now)

    return run_write(engine, op)
