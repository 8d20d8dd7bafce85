"""Deposits: credit what arrived (cash, grams of metal, a bill) into a customer's account.

``currency``/``amount`` are what arrived. Into an account of another currency it is
converted at the quoted ``rate_version`` (the customer sells at the bid) and posts through
the branch's FX position accounts. A bill goes into a ``bills`` account against the
branch's bills custody, and is recorded in ``bill_holdings``.

``quoted_at`` is when the customer was shown the quote (default ``now``): the rate version
must have been usable then. A tube deposit is quoted when it is opened and posted once
counted, possibly minutes later and after newer rates: the rate shown is still the rate
posted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Connection, Engine, Row, select, update

from branchline.common.errors import FailedPrecondition, InvalidArgument
from branchline.server.ledger import accounts as acc
from branchline.server.ledger.fx import convert, usable_rate_table
from branchline.server.ledger.money import (
    Asset,
    LedgerSettings,
    asset,
    format_amount,
    parse_amount,
    to_minor,
)
from branchline.server.ledger.postings import (
    BILL_DEPOSIT,
    DEPOSIT,
    LegSpec,
    Posting,
    check_reference,
    customer_account_row,
    lock_for_posting,
    replay,
    request_hash,
    run_write,
    vault_kind,
    write_entry,
)
from branchline.server.ledger.requests import BillDeposit, DepositRequest
from branchline.server.ledger.schema import bill_holdings

MAX_INSTRUMENT = 32


@dataclass(frozen=True)
class _Plan:
    """The legs of one deposit and how the journal describes it."""

    legs: list[LegSpec]
    description: str
    rate_version: int | None
    value_minor: int  # what arrived, in its own asset's smallest units


def post_deposit(engine: Engine, request: DepositRequest, settings: LedgerSettings) -> Posting:
    """Credit ``request`` once; a repeat of its reference returns the first posting."""
    given, value = _checked(request, settings)
    digest = _digest(request, given, value)
    bill = request.bill

    def op(conn: Connection) -> Posting:
        first = replay(conn, request.reference, digest)
        if first is not None:
            return first
        row = customer_account_row(
            conn, request.account_id, "deposit.account_id", request.customer_id
        )
        plan = _plan(conn, request, row, given, value, settings)
        locked = lock_for_posting(conn, [leg.account_id for leg in plan.legs], request.now)
        first = replay(conn, request.reference, digest)
        if first is not None:
            return first
        if bill is not None:
            _ensure_bill_free(conn, bill.bill_id)
        posting = write_entry(
            conn,
            locked,
            request.reference,
            digest,
            BILL_DEPOSIT if bill is not None else DEPOSIT,
            plan.description,
            plan.legs,
            request.now,
            field_name="deposit.amount",
            rate_version=plan.rate_version,
        )
        if bill is not None:
            _store_bill(
                conn, bill, row, given.code, plan.value_minor, posting.entry_id, request.now
            )
        return posting

    return run_write(engine, op)


def _checked(request: DepositRequest, settings: LedgerSettings) -> tuple[Asset, Decimal]:
    """The asset and amount that arrived, every field checked before any database work."""
    check_reference(request.reference, "deposit")
    quoted_at, now = request.quoted_at, request.now
    if quoted_at is not None and (quoted_at.tzinfo is None or quoted_at > now):
        raise InvalidArgument("deposit.quoted_at", "an aware time no later than the posting")
    acc.check_identifier(request.branch, "deposit.branch", acc.MAX_BRANCH)
    given = asset(request.currency, "deposit.currency")
    value = parse_amount(request.amount, given, "deposit.amount", settings)
    if request.bill is not None:
        _check_bill(request.bill, now)
    return given, value


def _digest(request: DepositRequest, given: Asset, value: Decimal) -> str:
    bill = request.bill
    return request_hash(
        {
            "op": "deposit",
            "account": request.account_id,
            "branch": request.branch,
            "currency": given.code,
            "amount": str(value),
            "rate_version": request.rate_version,
            "bill": None if bill is None else [bill.bill_id, bill.instrument, str(bill.maturity)],
        }
    )


def _plan(
    conn: Connection,
    request: DepositRequest,
    row: Row,  # type: ignore[type-arg]
    given: Asset,
    value: Decimal,
    settings: LedgerSettings,
) -> _Plan:
    """The legs: into a bills account, into an account of the same asset, or converted."""
    bill, branch, now = request.bill, request.branch, request.now
    target = asset(row.currency, "account.currency")
    if (row.kind == acc.BILLS) != (bill is not None):
        raise InvalidArgument(
            "deposit.bill", "a bill goes into a bills account, and a bills account takes bills"
        )
    value_minor = to_minor(value, given)
    if bill is not None:
        if given.code != target.code:
            raise InvalidArgument(
                "deposit.currency",
                f"a {given.code} bill cannot go into a {target.code} bills account",
                reason="currency_mismatch",
            )
        custody = acc.ensure_internal_account(conn, acc.BILLS_CUSTODY, branch, given.code, now)
        description = (
            f"bill {bill.bill_id} ({bill.instrument}, matures {bill.maturity}) "
            f"{format_amount(value, given)}"
        )
        legs = [
            LegSpec(row.account_id, given.code, value_minor),
            LegSpec(custody, given.code, -value_minor),
        ]
        return _Plan(legs, description, None, value_minor)
    vault = acc.ensure_internal_account(conn, vault_kind(given.code), branch, given.code, now)
    if given.code == target.code:
        legs = [
            LegSpec(row.account_id, given.code, value_minor),
            LegSpec(vault, given.code, -value_minor),
        ]
        return _Plan(legs, f"deposit {format_amount(value, given)}", None, value_minor)
    return _converted(conn, request, row.account_id, vault, given, target, value, settings)


def _converted(
    conn: Connection,
    request: DepositRequest,
    account_id: str,
    vault: str,
    given: Asset,
    target: Asset,
    value: Decimal,
    settings: LedgerSettings,
) -> _Plan:
    """A deposit into an account of another currency, at the rates the customer was quoted."""
    if request.rate_version is None:
        raise InvalidArgument(
            "deposit.rate_version",
            f"{given.code} into a {target.code} account is converted; pass the version of the "
            "rates the customer was quoted",
            reason="rate_version_required",
        )
    now, branch = request.now, request.branch
    table = usable_rate_table(conn, request.rate_version, request.quoted_at or now, settings)
    q = convert(table, given.code, target.code, value, "from", now, settings, "deposit")
    value_minor = to_minor(value, given)
    credited_minor = to_minor(q.to_amount, target)
    fx_given = acc.ensure_internal_account(conn, acc.FX_POSITION, branch, given.code, now)
    fx_target = acc.ensure_internal_account(conn, acc.FX_POSITION, branch, target.code, now)
    legs = [
        LegSpec(vault, given.code, -value_minor),
        LegSpec(fx_given, given.code, value_minor),
        LegSpec(fx_target, target.code, -credited_minor),
        LegSpec(account_id, target.code, credited_minor),
    ]
    description = (
        f"deposit {format_amount(value, given)} as {format_amount(q.to_amount, target)} "
        f"at {q.rate} (rates v{table.version_id})"
    )
    return _Plan(legs, description, table.version_id, value_minor)


def _check_bill(bill: BillDeposit, now: datetime) -> None:
    acc.check_identifier(bill.bill_id, "deposit.bill.bill_id")
    acc.check_identifier(bill.instrument, "deposit.bill.instrument", MAX_INSTRUMENT)
    if not isinstance(bill.maturity, date) or isinstance(bill.maturity, datetime):
        raise InvalidArgument("deposit.bill.maturity", "a date is required")
    if bill.maturity < now.date():
        raise InvalidArgument(
            "deposit.bill.maturity",
            f"{bill.maturity} is past; a matured bill is presented for payment",
            reason="bill_matured",
        )


def _ensure_bill_free(conn: Connection, bill_id: str) -> None:
    row = conn.execute(
        select(bill_holdings.c.status).where(bill_holdings.c.bill_id == bill_id).with_for_update()
    ).first()
    if row is not None and row.status == "held":
        raise FailedPrecondition(
            f"deposit.bill.bill_id: bill {bill_id} is already held",
            field="deposit.bill.bill_id",
            reason="bill_already_held",
        )


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
