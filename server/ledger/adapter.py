"""The core-banking adapter: what the rest of the server calls to move money.

``CoreBanking`` is the interface; ``EmbeddedLedger`` (this package's SQLAlchemy ledger) is
the default implementation. A bank's real core would be another implementation behind the
same calls. Every call that changes money takes a ``Reference`` (terminal id + request or
outbox id) and is idempotent on it: a repeat returns the first result with
``replayed=True``. Refusals are ``branchline.common.errors`` errors (``InvalidArgument``,
``NotFound``, ``FailedPrecondition``) whose ``reason`` is stable and whose ``field`` names
the request's field (``withdrawal.amount``).

The calls that take many fields take one request dataclass (``requests``): the same object
goes through this protocol, the adapter and the operation's module.

Withdrawal: ``authorise_withdrawal`` (hold) → device delivers → ``post_withdrawal``
(capture) — or ``release_hold`` when the device did not complete; once captured,
``reverse`` the entry instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from sqlalchemy import Engine

from branchline.server.ledger import accounts as acc
from branchline.server.ledger import (
    deposits,
    fx,
    holds,
    postings,
    reversals,
    statements,
    withdrawals,
)
from branchline.server.ledger.accounts import Account, BillHolding
from branchline.server.ledger.fx import Quote, RateInput, RateTable, Side
from branchline.server.ledger.holds import Hold, HoldRelease
from branchline.server.ledger.money import LedgerSettings
from branchline.server.ledger.postings import Posting, Reference
from branchline.server.ledger.requests import DepositRequest, ReversalRequest, WithdrawalRequest
from branchline.server.ledger.statements import Statement


class CoreBanking(Protocol):
    def authorise_withdrawal(self, request: WithdrawalRequest) -> Hold: ...

    def post_withdrawal(self, reference: Reference, hold_id: str, now: datetime) -> Posting: ...

    def release_hold(
        self, hold_id: str, reason: str, now: datetime, terminal_id: str | None = None
    ) -> HoldRelease: ...

    def post_deposit(self, request: DepositRequest) -> Posting: ...

    def reverse(self, request: ReversalRequest) -> Posting: ...

    def find_posting(self, reference: Reference) -> Posting | None: ...

    def get_hold(self, hold_id: str) -> Hold | None: ...

    def balances(self, customer_id: str) -> list[Account]: ...

    def customer_account(self, customer_id: str, account_id: str) -> Account | None: ...

    def statement(
        self, account_id: str, limit: int = 20, since: datetime | None = None
    ) -> Statement: ...

    def accounts_for_card(self, card_token: str) -> list[Account]: ...

    def bills(self, customer_id: str) -> list[BillHolding]: ...

    def quote(
        self,
        from_currency: str,
        to_currency: str,
        amount: object,
        side: Side,
        now: datetime,
        rate_version: int | None = None,
    ) -> Quote: ...

    def set_rates(
        self, rates: Mapping[str, RateInput], source: str, now: datetime
    ) -> RateTable: ...

    def current_rates(self) -> RateTable | None: ...

    def rates_changed_since(self, version_id: int) -> RateTable | None: ...


class EmbeddedLedger:
    """The default core banking: the ledger tables in the server's own database."""

    def __init__(self, engine: Engine, settings: LedgerSettings | None = None) -> None:
        self.engine = engine
        self.settings = settings or LedgerSettings()

    def authorise_withdrawal(self, request: WithdrawalRequest) -> Hold:
        return withdrawals.authorise_withdrawal(self.engine, request, self.settings)

    def post_withdrawal(self, reference: Reference, hold_id: str, now: datetime) -> Posting:
        return holds.capture_hold(self.engine, reference, hold_id, now)

    def release_hold(
        self, hold_id: str, reason: str, now: datetime, terminal_id: str | None = None
    ) -> HoldRelease:
        return holds.release_hold(self.engine, hold_id, reason, now, terminal_id)

    def post_deposit(self, request: DepositRequest) -> Posting:
        return deposits.post_deposit(self.engine, request, self.settings)

    def reverse(self, request: ReversalRequest) -> Posting:
        return reversals.reverse(self.engine, request)

    def find_posting(self, reference: Reference) -> Posting | None:
        return postings.find_posting(self.engine, reference)

    def get_hold(self, hold_id: str) -> Hold | None:
        return holds.get_hold(self.engine, hold_id)

    def balances(self, customer_id: str) -> list[Account]:
        return statements.balances(self.engine, customer_id)

    def customer_account(self, customer_id: str, account_id: str) -> Account | None:
        return statements.customer_account(self.engine, customer_id, account_id)

    def statement(
        self, account_id: str, limit: int = 20, since: datetime | None = None
    ) -> Statement:
        return statements.statement(self.engine, account_id, limit, since)

    def accounts_for_card(self, card_token: str) -> list[Account]:
        return acc.card_accounts_of(self.engine, card_token)

    def bills(self, customer_id: str) -> list[BillHolding]:
        return acc.bill_holdings_of(self.engine, customer_id)

    def quote(
        self,
        from_currency: str,
        to_currency: str,
        amount: object,
        side: Side,
        now: datetime,
        rate_version: int | None = None,
    ) -> Quote:
        return fx.quote(
            self.engine, from_currency, to_currency, amount, side, now, self.settings, rate_version
        )

    def set_rates(self, rates: Mapping[str, RateInput], source: str, now: datetime) -> RateTable:
        return fx.set_rates(self.engine, rates, source, now)

    def current_rates(self) -> RateTable | None:
        return fx.current_rates(self.engine)

    def rates_changed_since(self, version_id: int) -> RateTable | None:
        return fx.rates_changed_since(self.engine, version_id)

    def expire_holds(self, now: datetime) -> int:
        return holds.expire_holds(self.engine, now)

    def audit(self) -> list[str]:
        return statements.audit(self.engine)
