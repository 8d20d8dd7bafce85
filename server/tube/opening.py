"""The open path of a tube transaction as plain functions: checks, FX quote, hold.

Each step takes plain values and returns a dataclass (no protobuf here: ``convert`` reads
the terminal's ``tube_open`` into an ``OpenRequest`` and builds the reply from the stored
row). A refusal is a ``branchline.common.errors`` error whose ``field`` is the path in
``tube_open``; the ledger's refusals are re-homed from the ledger request's field to the
``tube_open`` field that fed it (``QUOTE_FIELDS``, ``HOLD_FIELDS``).

    check_open  -> OpenChecks   terminal registered, session, account, asset, conversion
    quote_open  -> OpenQuote    the rate and the amount in the account's currency
    hold_open   -> OpenHold     a withdrawal's hold (None for a deposit)
    open_transaction -> OpenedTransaction (all three, and the masked PAN), ``record()`` the row
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from branchline.common.errors import (
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
    check_text,
    echo,
)
from branchline.common.field_paths import mapped, renamed
from branchline.server.ledger.accounts import MAX_ID as MAX_ACCOUNT_ID
from branchline.server.ledger.accounts import Account
from branchline.server.ledger.money import asset as ledger_asset
from branchline.server.ledger.money import to_minor
from branchline.server.ledger.postings import Reference
from branchline.server.ledger.requests import WithdrawalRequest
from branchline.server.ledger.sessions import SessionClaims, SessionRefused
from branchline.server.storage.engine import connect
from branchline.server.tube import convert, store
from branchline.server.tube import model as m
from branchline.server.tube import validate as v
from branchline.server.tube.core import TubeCore

RATE_QUANTUM = Decimal("0.00000001")

# Which tube_open field fed each field of the ledger's quote and withdrawal requests.
QUOTE_FIELDS: Mapping[str, str] = {
    "quote.amount": "tube_open.asset.amount",
    "rate_version": "tube_open.rate_version",
}
HOLD_FIELDS: Mapping[str, str] = {
    "withdrawal.amount": "tube_open.asset.amount",
    "withdrawal.currency": "tube_open.asset.currency",
    "withdrawal.bill_id": "tube_open.asset.bill.bill_id",
    "withdrawal.account_id": "tube_open.account_id",
    "withdrawal.rate_version": "tube_open.rate_version",
    "rate_version": "tube_open.rate_version",
    "reference": "tube_open.txn_id",
}


@dataclass(frozen=True)
class OpenChecks:
    """Everything a new open was checked for: who, where, which account, what asset."""

    terminal_id: str
    branch: str
    customer_id: str
    card_token: str
    account: Account
    asset: v.ParsedAsset
    withdrawal: bool
    rate_version: int | None  # the version the customer was shown; None when not converted

    @property
    def converted(self) -> bool:
        return self.asset.currency != self.account.currency


@dataclass(frozen=True)
class OpenQuote:
    rate: Decimal  # account currency per unit of the asset's (1 when not converted)
    account_amount: Decimal  # in the account's currency
    rate_version: int | None


@dataclass(frozen=True)
class OpenHold:
    hold_id: str
    account_amount: Decimal  # what the hold reserves, in the account's currency
    balance_after: Decimal | None
    available_after: Decimal | None


@dataclass(frozen=True)
class OpenedTransaction:
    txn_id: str
    request: v.OpenRequest
    checks: OpenChecks
    quote: OpenQuote
    hold: OpenHold | None
    pan_masked: str | None

    def record(self, now: datetime) -> dict[str, Any]:
        """The new ``tube_transactions`` row."""
        checks, parsed = self.checks, self.checks.asset
        of_account = ledger_asset(checks.account.currency, "account.currency")
        hold = self.hold
        account_amount = hold.account_amount if hold is not None else self.quote.account_amount
        return {
            "txn_id": self.txn_id,
            "terminal_id": checks.terminal_id,
            "branch": checks.branch,
            "kind": m.WITHDRAWAL if checks.withdrawal else m.DEPOSIT,
            "state": m.OPEN,
            "pending": None,
            "customer_id": checks.customer_id,
            "account_id": checks.account.account_id,
            "open_hash": self.request.digest,
            "requested_kind": parsed.kind,
            "requested_currency": parsed.currency,
            "requested_minor": to_minor(parsed.amount, parsed.of),
            "requested_bill_id": parsed.bill_id,
            "requested_instrument": parsed.instrument,
            "requested_maturity": parsed.maturity,
            "rate_version": self.quote.rate_version,
            "rate": convert.plain(self.quote.rate),
            "account_currency": checks.account.currency,
            "account_minor": to_minor(account_amount, of_account),
            "hold_id": hold.hold_id if hold is not None else None,
            "balance_after_minor": _minor(hold.balance_after if hold else None, of_account),
            "available_after_minor": _minor(hold.available_after if hold else None, of_account),
            "note": "",
            "reason": "",
            "pan_masked": self.pan_masked,
            "created_at": now,
            "updated_at": now,
            "updated_by": m.actor(m.TERMINAL_ACTOR, checks.terminal_id),
        }


def open_transaction(
    core: TubeCore, terminal_id: str, txn_id: str, request: v.OpenRequest, now: datetime
) -> OpenedTransaction:
    """Every check of a new open, then its quote and (a withdrawal's) hold."""
    checks = check_open(core, terminal_id, request, now)
    quote = quote_open(core, checks, now)
    hold = hold_open(core, checks, quote, txn_id, now)
    with connect(core.engine) as conn:
        pan_masked = store.pan_masked(conn, checks.card_token)
    return OpenedTransaction(txn_id, request, checks, quote, hold, pan_masked)


def check_open(
    core: TubeCore, terminal_id: str, request: v.OpenRequest, now: datetime
) -> OpenChecks:
    """Who opens it (a registered terminal, a signed-in customer), into or from which of the
    customer's accounts, and what asset: refused naming the ``tube_open`` field."""
    with connect(core.engine) as conn:
        branch = store.terminal_branch(conn, terminal_id)
    if branch is None:
        raise FailedPrecondition(
            f"tube_open: terminal {echo(terminal_id)} has not registered",
            reason="unknown_terminal",
        )
    claims = _session(core, request.session_token, terminal_id, now)
    account = _own_account(core, claims.customer_id, request.account_id)
    withdrawal = request.kind == m.WITHDRAWAL
    parsed = v.parse_asset(
        request.asset,
        "tube_open.asset",
        core.settings,
        bill_details="bill_id" if withdrawal else "optional",
    )
    wanted_account = m.ACCOUNT_KIND[parsed.kind]
    if account.kind != wanted_account:
        raise InvalidArgument(
            "tube_open.asset.kind",
            f"{parsed.kind} goes {'out of' if withdrawal else 'into'} a {wanted_account} "
            f"account; {account.account_id} is a {account.kind} account",
        )
    converted = parsed.currency != account.currency
    if converted and parsed.kind != m.CASH:
        raise InvalidArgument(
            "tube_open.asset.currency",
            f"account {account.account_id} holds {account.currency}, not {parsed.currency}",
            reason="currency_mismatch",
        )
    if converted and not request.rate_version:
        raise InvalidArgument(
            "tube_open.rate_version",
            f"{parsed.currency} {'from' if withdrawal else 'into'} a {account.currency} account "
            "is converted; send the version of the rates the customer was shown",
            reason="rate_version_required",
        )
    return OpenChecks(
        terminal_id=terminal_id,
        branch=branch,
        customer_id=claims.customer_id,
        card_token=claims.card_token,
        account=account,
        asset=parsed,
        withdrawal=withdrawal,
        rate_version=request.rate_version if converted else None,
    )


def quote_open(core: TubeCore, checks: OpenChecks, now: datetime) -> OpenQuote:
    """The rate the customer was shown and the amount in the account's currency."""
    parsed, account = checks.asset, checks.account
    if not checks.converted:
        return OpenQuote(Decimal(1), parsed.amount, None)
    amount = str(parsed.amount)
    try:
        if not checks.withdrawal:
            # The bank buys the customer's currency at its bid.
            q = core.ledger.quote(
                parsed.currency, account.currency, amount, "from", now, checks.rate_version
            )
            return OpenQuote(q.rate, q.to_amount, q.rate_version)
        # The bank sells the asked-for currency at its ask; shown per unit of it.
        q = core.ledger.quote(
            account.currency, parsed.currency, amount, "to", now, checks.rate_version
        )
    except DomainError as exc:
        raise mapped(exc, QUOTE_FIELDS, "tube_open.asset") from None
    return OpenQuote(
        (q.to_rate / q.from_rate).quantize(RATE_QUANTUM), q.from_amount, q.rate_version
    )


def hold_open(
    core: TubeCore, checks: OpenChecks, quote: OpenQuote, txn_id: str, now: datetime
) -> OpenHold | None:
    """A withdrawal's hold on the account (None for a deposit: nothing moves until counted)."""
    if not checks.withdrawal:
        return None
    request = WithdrawalRequest(
        Reference(checks.terminal_id, f"{txn_id}:hold"),
        account_id=checks.account.account_id,
        branch=checks.branch,
        currency=checks.asset.currency,
        amount=str(checks.asset.amount),
        now=now,
        rate_version=quote.rate_version,
        bill_id=checks.asset.bill_id,
        customer_id=checks.customer_id,
    )
    try:
        hold = core.ledger.authorise_withdrawal(request)
    except DomainError as exc:
        refused = mapped(exc, HOLD_FIELDS, "tube_open")
        if refused.reason == "reference_reused":
            refused.reason = "txn_id_reused"
        raise refused from None
    after = core.customer_account(checks.customer_id, checks.account.account_id)
    return OpenHold(
        hold.hold_id,
        hold.amount,
        after.balance if after is not None else None,
        after.available if after is not None else None,
    )


def _session(core: TubeCore, token: str, terminal_id: str, now: datetime) -> SessionClaims:
    if core.sessions is None:
        raise FailedPrecondition(
            "tube_open.session_token: this server verifies no PINs (no --hsm), so it has no "
            "customer sessions",
            field="tube_open.session_token",
            reason="sessions_unavailable",
        )
    try:
        return core.sessions.check(token, terminal_id, now)
    except SessionRefused as exc:
        raise renamed(exc, f"tube_open.{exc.field}") from None


def _own_account(core: TubeCore, customer_id: str, account_id: str) -> Account:
    if not account_id:
        raise InvalidArgument("tube_open.account_id", "must not be empty")
    check_text("tube_open.account_id", account_id, max_len=MAX_ACCOUNT_ID)
    try:
        account = core.customer_account(customer_id, account_id)
    except DomainError as exc:
        raise mapped(exc, {}, "tube_open.account_id") from None
    if account is None:
        raise PermissionDenied(
            f"tube_open.account_id: {echo(account_id, 64)} is not an account of the "
            "signed-in customer",
            rule="not_your_account",
            field="tube_open.account_id",
        )
    return account


def _minor(amount: Decimal | None, of: Any) -> int | None:
    return to_minor(amount, of) if amount is not None else None
