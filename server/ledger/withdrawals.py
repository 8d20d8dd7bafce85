"""Withdrawals: authorise one against the balance (a hold), to be captured or released.

``authorise_withdrawal`` reserves the amount (refusing an overdraft under the account's
row lock) and fixes everything the posting will use: the dispensed asset and amount, and
the rate version of a foreign-currency withdrawal, so the customer is debited exactly what
was shown even if rates change while the carrier travels. ``holds`` captures (posts) or
releases it. Lock order: account rows (by id), then the hold row, then the bill row.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Connection, Engine, Row, bindparam, select, update

from branchline.common.errors import FailedPrecondition, InvalidArgument, NotFound
from branchline.common.ids import random_hex
from branchline.server.ledger import accounts as acc
from branchline.server.ledger.fx import convert, usable_rate_table
from branchline.server.ledger.holds import ACTIVE, Hold, hold_from_row
from branchline.server.ledger.money import (
    Asset,
    LedgerSettings,
    asset,
    format_amount,
    from_minor,
    parse_amount,
    to_minor,
)
from branchline.server.ledger.postings import (
    Reference,
    check_reference,
    customer_account_row,
    lock_for_posting,
    over_balance,
    request_hash,
    run_write,
)
from branchline.server.ledger.requests import WithdrawalRequest
from branchline.server.ledger.schema import accounts, bill_holdings, holds
from branchline.server.storage.fastpath import execute, remember
from branchline.server.storage.prebuilt import by_key, key


def authorise_withdrawal(
    engine: Engine, request: WithdrawalRequest, settings: LedgerSettings
) -> Hold:
    """Reserve the withdrawal ``request`` asks for (what the customer will receive).

    From an account of another currency the debit is converted at ``rate_version`` (the
    customer buys at the ask). From a bills account, name the bill; ``currency`` and
    ``amount`` must be its currency and face value.
    """
    reference, now = request.reference, request.now
    account_id, branch, bill_id = request.account_id, request.branch, request.bill_id
    check_reference(reference, "withdrawal")
    acc.check_identifier(branch, "withdrawal.branch", acc.MAX_BRANCH)
    dispensed = asset(request.currency, "withdrawal.currency")
    value = parse_amount(request.amount, dispensed, "withdrawal.amount", settings)
    if bill_id is not None:
        acc.check_identifier(bill_id, "withdrawal.bill_id")
    digest = _digest(request, dispensed, value)

    def op(conn: Connection) -> Hold:
        first = _replayed_hold(conn, reference, digest)
        if first is not None:
            return first
        row = customer_account_row(conn, account_id, "withdrawal.account_id", request.customer_id)
        debit, debit_amount, version = _debit(conn, request, row, dispensed, value, settings)
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
        hold = _insert_hold(
            conn,
            request,
            digest,
            row.account_id,
            (debit.code, debit_minor),
            (dispensed.code, to_minor(value, dispensed)),
            version,
            settings,
        )
        return hold_from_row(hold)

    return run_write(engine, op)


def _digest(request: WithdrawalRequest, dispensed: Asset, value: Decimal) -> str:
    return request_hash(
        {
            "op": "authorise",
            "account": request.account_id,
            "branch": request.branch,
            "currency": dispensed.code,
            "amount": str(value),
            "rate_version": request.rate_version,
            "bill": request.bill_id,
        }
    )


def _debit(
    conn: Connection,
    request: WithdrawalRequest,
    row: Row,  # type: ignore[type-arg]
    dispensed: Asset,
    value: Decimal,
    settings: LedgerSettings,
) -> tuple[Asset, Decimal, int | None]:
    """What the account is debited (its asset, the amount) and the rate version used."""
    debit = asset(row.currency, "account.currency")
    if (row.kind == acc.BILLS) != (request.bill_id is not None):
        raise InvalidArgument(
            "withdrawal.bill_id", "bills come out of a bills account, and only bills do"
        )
    if dispensed.code == debit.code:
        return debit, value, None
    if request.rate_version is None:
        raise InvalidArgument(
            "withdrawal.rate_version",
            f"{dispensed.code} from a {debit.code} account is converted; pass the version of "
            "the rates the customer was quoted",
            reason="rate_version_required",
        )
    now = request.now
    table = usable_rate_table(conn, request.rate_version, now, settings)
    q = convert(table, debit.code, dispensed.code, value, "to", now, settings, "withdrawal")
    return debit, q.from_amount, table.version_id


# Built once (``storage.prebuilt``).
_INSERT_HOLD = holds.insert().returning(*holds.c)  # the stored hold, not read again
_HOLD_MORE = (
    update(accounts)
    .where(accounts.c.account_id == bindparam(key("account_id")))
    .values(held_minor=accounts.c.held_minor + bindparam("amount"))
    .returning(*accounts.c)  # the account as it now is: the balances after, not read again
)
_ACCOUNT = by_key(accounts, ("account_id",))


def _insert_hold(
    conn: Connection,
    request: WithdrawalRequest,
    digest: str,
    account_id: str,
    debit: tuple[str, int],
    dispensed: tuple[str, int],
    rate_version: int | None,
    settings: LedgerSettings,
) -> Row:  # type: ignore[type-arg]
    """Write the hold (and reserve its amount and bill); the stored hold."""
    hold_id = random_hex()
    now, bill_id = request.now, request.bill_id
    hold = execute(
        conn,
        _INSERT_HOLD,
        {
            "hold_id": hold_id,
            "terminal_id": request.reference.terminal_id,
            "request_id": request.reference.request_id,
            "request_hash": digest,
            "account_id": account_id,
            "branch": request.branch,
            "currency": debit[0],
            "amount_minor": debit[1],
            "dispensed_currency": dispensed[0],
            "dispensed_minor": dispensed[1],
            "rate_version_id": rate_version,
            "bill_id": bill_id,
            "status": ACTIVE,
            "created_at": now,
            "expires_at": now + settings.hold_ttl,
            "closed_at": None,
            "entry_id": None,
            "reason": None,
        },
    ).one()
    account = execute(conn, _HOLD_MORE, {"amount": debit[1], key("account_id"): account_id}).one()
    remember(conn, _ACCOUNT, {key("account_id"): account_id}, [account])
    if bill_id is not None:
        conn.execute(
            update(bill_holdings)
            .where(bill_holdings.c.bill_id == bill_id)
            .values(hold_id=hold_id, updated_at=now)
        )
    return hold


def _replayed_hold(conn: Connection, reference: Reference, digest: str) -> Hold | None:
    row = execute(
        conn,
        by_key(holds, ("terminal_id", "request_id")),
        {key("terminal_id"): reference.terminal_id, key("request_id"): reference.request_id},
    ).first()
    if row is None:
        return None
    if row.request_hash != digest:
        raise FailedPrecondition(
            f"reference {reference}: already used for a different request (hold {row.hold_id})",
            field="reference",
            reason="reference_reused",
        )
    return hold_from_row(row, replayed=True)


def _reserve_bill_check(
    conn: Connection, bill_id: str, account_id: str, currency: str, face_minor: int
) -> None:
    bill = conn.execute(
        select(bill_holdings).where(bill_holdings.c.bill_id == bill_id).with_for_update()
    ).first()
    if bill is None or bill.status != "held" or bill.account_id != account_id:
        raise NotFound(
            f"withdrawal.bill_id: bill {bill_id!r} is not held in account {account_id}",
            field="withdrawal.bill_id",
            reason="unknown_bill",
        )
    if bill.hold_id is not None:
        raise FailedPrecondition(
            f"withdrawal.bill_id: bill {bill_id} is already being withdrawn",
            field="withdrawal.bill_id",
            reason="bill_reserved",
        )
    if (bill.currency, int(bill.face_minor)) != (currency, face_minor):
        of = asset(bill.currency, "bill.currency")
        raise InvalidArgument(
            "withdrawal.amount",
            f"bill {bill_id} has a face value of "
            f"{format_amount(from_minor(bill.face_minor, of), of)}",
        )
