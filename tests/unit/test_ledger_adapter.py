"""The core-banking adapter: the embedded ledger behind the CoreBanking interface."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine

from branchline.common.errors import NotFound
from branchline.server.ledger import accounts as acc
from branchline.server.ledger.adapter import CoreBanking, EmbeddedLedger
from branchline.server.ledger.cards import enroll_card
from branchline.server.ledger.requests import DepositRequest, WithdrawalRequest
from tests.unit import ledger_support
from tests.unit.ledger_support import BRANCH, T0, open_account, ref

# The ledger over the shared `engine` (conftest), on SQLite and PostgreSQL.
ledger = ledger_support.ledger


def test_embedded_ledger_is_a_core_banking(engine: Engine) -> None:
    core: CoreBanking = EmbeddedLedger(engine)  # mypy checks the whole interface here
    assert core.current_rates() is None


# long: one end-to-end scenario, step by step, over one stack of processes
def test_tube_flows_through_the_interface(ledger: EmbeddedLedger) -> None:
    """Card → accounts; deposit confirmed; withdrawal authorised, delivered; one walked away."""
    core: CoreBanking = ledger
    account = open_account(ledger.engine)
    enroll_card(
        ledger.engine,
        card_token="tok",
        pan_masked="622202******0001",
        customer_id="c1",
        verification_method="visa_pvv",
        pvki=1,
        verification_value="0000",
        pvk_name="pvk",
        now=T0,
    )
    acc.link_card(ledger.engine, "tok", account.account_id, T0)
    [card_account] = core.accounts_for_card("tok")
    deposit = core.post_deposit(
        DepositRequest(
            ref("t1:1"),
            account_id=card_account.account_id,
            branch=BRANCH,
            currency="CNY",
            amount="500",
            now=T0,
        )
    )
    assert deposit.leg(account.account_id).balance_after == Decimal("500.00")
    # Withdrawal delivered: authorise → carrier arrives → customer confirms → posting.
    hold = core.authorise_withdrawal(
        WithdrawalRequest(
            ref("t1:2"),
            account_id=account.account_id,
            branch=BRANCH,
            currency="CNY",
            amount="200",
            now=T0,
        )
    )
    core.post_withdrawal(ref("t1:3"), hold.hold_id, T0 + timedelta(minutes=2))
    # Withdrawal not taken: the host approved, the device did not complete → released once.
    walked = core.authorise_withdrawal(
        WithdrawalRequest(
            ref("t1:4"),
            account_id=account.account_id,
            branch=BRANCH,
            currency="CNY",
            amount="100",
            now=T0,
        )
    )
    assert [b.available for b in core.balances("c1")] == [Decimal("200.00")]
    assert core.release_hold(walked.hold_id, "not taken", T0, terminal_id="t1").released
    assert not core.release_hold(walked.hold_id, "recovery after restart", T0).released
    statement = core.statement(account.account_id)
    assert [(r.kind, r.balance_after) for r in statement.rows] == [
        ("deposit", Decimal("500.00")),
        ("withdrawal", Decimal("300.00")),
    ]
    assert [b.available for b in core.balances("c1")] == [Decimal("300.00")]
    # A recovering terminal asks whether its request posted.
    found = core.find_posting(ref("t1:3"))
    assert found is not None and found.hold_id == hold.hold_id
    assert core.get_hold(walked.hold_id) is not None


def test_customer_account_is_one_of_the_customers_own_with_its_balances(
    ledger: EmbeddedLedger,
) -> None:
    """What the tube reads after a hold: the account by its key, only the customer's own."""
    core: CoreBanking = ledger
    account = ledger_support.funded(ledger, "500")
    other = open_account(ledger.engine, "c2")
    hold = core.authorise_withdrawal(
        WithdrawalRequest(
            ref("t1:5"),
            account_id=account.account_id,
            branch=BRANCH,
            currency="CNY",
            amount="100",
            now=T0,
        )
    )
    found = core.customer_account("c1", account.account_id)
    assert found is not None and found == core.balances("c1")[0]
    assert (found.balance, found.held, found.available) == (
        Decimal("500.00"),
        hold.amount,
        Decimal("400.00"),
    )
    assert core.customer_account("c1", other.account_id) is None  # another customer's
    assert core.customer_account("c1", "no-such-account") is None
    with pytest.raises(NotFound):
        core.customer_account("nobody", account.account_id)  # as balances("nobody")
