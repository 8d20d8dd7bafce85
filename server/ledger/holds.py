"""Withdrawal holds after authorisation (``withdrawals.authorise_withdrawal``): capture
(post) or release.

A hold fixes everything the posting will use: the dispensed asset and amount, and the rate
version of a foreign-currency withdrawal. ``capture_hold`` posts it once;
``release_hold`` ends an uncompleted one once (a second release changes nothing). A hold
past ``expires_at`` stops reserving; capturing it still works if the balance covers it.

Lock order everywhere: account rows (by id), then the hold row, then the bill row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Connection, Engine, Row, select, update

from branchline.common.errors import FailedPrecondition, NotFound
from branchline.server.ledger import accounts as acc
from branchline.server.ledger.money import (
    asset,
    format_amount,
    from_minor,
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
    expire_due_holds,
    load_posting,
    lock_for_posting,
    replay,
    request_hash,
    run_write,
    vault_kind,
    write_entry,
)
from branchline.server.ledger.schema import accounts, bill_holdings, holds, journal_entries
from branchline.server.storage.engine import connect
from branchline.server.storage.fastpath import execute
from branchline.server.storage.prebuilt import by_key, key, update_by_key

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


def hold_from_row(row: Row, replayed: bool = False) -> Hold:  # type: ignore[type-arg]
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


def hold_row(conn: Connection, hold_id: object, field_name: str, lock: bool = False) -> Row:  # type: ignore[type-arg]
    acc.check_identifier(hold_id, field_name)
    row = execute(conn, by_key(holds, ("hold_id",), lock=lock), {key("hold_id"): hold_id}).first()
    if row is None:
        raise NotFound(
            f"{field_name}: hold {hold_id!r} does not exist",
            field=field_name,
            reason="unknown_hold",
        )
    return row


def get_hold(engine: Engine, hold_id: str) -> Hold | None:
    with connect(engine) as conn:
        row = execute(conn, by_key(holds, ("hold_id",)), {key("hold_id"): hold_id}).first()
    return hold_from_row(row) if row is not None else None


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
        hold = hold_row(conn, hold_id, "capture.hold_id")
        if hold.terminal_id != reference.terminal_id:
            raise FailedPrecondition(
                f"capture.hold_id: hold {hold_id} was authorised by another terminal",
                field="capture.hold_id",
                reason="not_owner",
            )
        legs = _capture_legs(conn, hold, now)
        locked = lock_for_posting(conn, [leg.account_id for leg in legs], now)
        hold = hold_row(conn, hold_id, "capture.hold_id", lock=True)
        first = replay(conn, reference, digest)
        if first is not None:
            return first
        if hold.status == CAPTURED:
            entry = conn.execute(
                select(journal_entries).where(journal_entries.c.entry_id == hold.entry_id)
            ).one()
            return load_posting(conn, entry, replayed=True)
        if hold.status == RELEASED:
            raise FailedPrecondition(
                f"capture.hold_id: hold {hold_id} was released ({hold.reason}); authorise again",
                field="capture.hold_id",
                reason="hold_released",
            )
        if hold.bill_id is not None:
            _check_bill_still_held(conn, hold)
        posting = _post_capture(conn, locked, reference, digest, hold, legs, now)
        _mark_captured(conn, hold, posting, now)
        return posting

    return run_write(engine, op)


def _check_bill_still_held(conn: Connection, hold: Row) -> None:  # type: ignore[type-arg]
    """A bill hold that expired may be captured only while its bill has not moved."""
    bill = conn.execute(
        select(bill_holdings).where(bill_holdings.c.bill_id == hold.bill_id).with_for_update()
    ).first()
    if bill is None or bill.status != "held" or bill.hold_id not in (None, hold.hold_id):
        raise FailedPrecondition(
            f"capture.hold_id: hold {hold.hold_id} expired and its bill has moved",
            field="capture.hold_id",
            reason="hold_expired",
        )


def _capture_description(hold: Row) -> str:  # type: ignore[type-arg]
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
    return description


def _post_capture(
    conn: Connection,
    locked: Mapping[str, Row],  # type: ignore[type-arg]
    reference: Reference,
    digest: str,
    hold: Row,  # type: ignore[type-arg]
    legs: list[LegSpec],
    now: datetime,
) -> Posting:
    """The withdrawal's entry; an active hold's reservation ends with it. An expired hold
    no longer reserves, so the balance must still cover it."""
    active = hold.status == ACTIVE
    try:
        return write_entry(
            conn,
            locked,
            reference,
            digest,
            BILL_WITHDRAWAL if hold.bill_id else WITHDRAWAL,
            _capture_description(hold),
            legs,
            now,
            field_name="capture",
            rate_version=hold.rate_version_id,
            hold_id=hold.hold_id,
            capture=HoldCapture(hold.account_id, int(hold.amount_minor)) if active else None,
        )
    except FailedPrecondition as exc:
        if exc.code != "insufficient_funds":
            raise
        raise FailedPrecondition(
            f"capture.hold_id: hold {hold.hold_id} expired at {hold.expires_at.isoformat()} "
            f"and the balance no longer covers it: {exc.message}",
            field="capture.hold_id",
            reason="hold_expired",
        ) from exc


def _mark_captured(
    conn: Connection,
    hold: Row,  # type: ignore[type-arg]
    posting: Posting,
    now: datetime,
) -> None:
    execute(
        conn,
        update_by_key(holds, "hold_id"),
        {
            "status": CAPTURED,
            "entry_id": posting.entry_id,
            "closed_at": now,
            key("hold_id"): hold.hold_id,
        },
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
        hold = hold_row(conn, hold_id, "release.hold_id")
        if terminal_id is not None and hold.terminal_id != terminal_id:
            raise FailedPrecondition(
                f"release.hold_id: hold {hold_id} was authorised by another terminal",
                field="release.hold_id",
                reason="not_owner",
            )
        lock_for_posting(conn, [hold.account_id], now)
        hold = hold_row(conn, hold_id, "release.hold_id", lock=True)
        if hold.status == CAPTURED:
            raise FailedPrecondition(
                f"release.hold_id: hold {hold_id} was captured by entry {hold.entry_id}; reverse "
                "that entry instead",
                field="release.hold_id",
                reason="hold_captured",
            )
        if hold.status != ACTIVE:
            return HoldRelease(hold_from_row(hold), released=False)
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
        return HoldRelease(hold_from_row(hold_row(conn, hold_id, "release.hold_id")), released=True)

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
