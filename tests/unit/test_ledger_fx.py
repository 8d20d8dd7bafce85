"""FX rate versions, quotes, and foreign-currency postings at the quoted version."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, select

from branchline.common.errors import FailedPrecondition, InvalidArgument, NotFound
from branchline.server.ledger import accounts as acc
from branchline.server.ledger.adapter import EmbeddedLedger
from branchline.server.ledger.requests import DepositRequest, ReversalRequest, WithdrawalRequest
from branchline.server.ledger.schema import fx_rate_versions
from branchline.server.storage import open_database
from tests.unit import ledger_support
from tests.unit.ledger_support import BRANCH, T0, funded, open_account, ref

# The ledger over the shared `engine` (conftest), on SQLite and PostgreSQL.
ledger = ledger_support.ledger

RATES = {"USD": ("7.1000", "7.2000"), "XAU": ("560.00", "566.00"), "EUR": ("7.75", "7.85")}


def test_rate_versions(ledger: EmbeddedLedger) -> None:
    assert ledger.current_rates() is None
    assert ledger.rates_changed_since(0) is None
    with pytest.raises(FailedPrecondition, match="no FX rates have been set"):
        ledger.quote("USD", "CNY", "1", "from", T0)
    v1 = ledger.set_rates(RATES, "feed", T0)
    assert v1.rates["USD"].bid == Decimal("7.1") and v1.superseded_at is None and v1.base == "CNY"
    assert str(v1.rates["XAU"].bid) == "560"  # plain digits, never 5.6E+2
    assert ledger.rates_changed_since(0) == v1
    assert ledger.rates_changed_since(v1.version_id) is None
    later = T0 + timedelta(minutes=1)
    v2 = ledger.set_rates({"USD": ("7.11", "7.21")}, "feed", later)
    assert v2.version_id > v1.version_id
    # Unnamed currencies carry over from the previous version.
    assert set(v2.rates) == {"USD", "XAU", "EUR"} and v2.rates["XAU"] == v1.rates["XAU"]
    assert v2.rates["USD"].ask == Decimal("7.21")
    changed = ledger.rates_changed_since(v1.version_id)
    assert changed is not None and changed.version_id == v2.version_id
    with ledger.engine.connect() as conn:
        superseded = conn.execute(
            select(fx_rate_versions.c.superseded_at).where(
                fx_rate_versions.c.version_id == v1.version_id
            )
        ).scalar_one()
    assert superseded == later
    with pytest.raises(InvalidArgument, match="bid 8 is above ask 7"):
        ledger.set_rates({"USD": ("8", "7")}, "feed", later)
    assert ledger.current_rates() == ledger.rates_changed_since(v1.version_id)


def test_quotes_carry_the_version(ledger: EmbeddedLedger) -> None:
    v1 = ledger.set_rates(RATES, "feed", T0)
    q = ledger.quote("USD", "CNY", "100", "from", T0)
    assert (q.rate_version, q.to_amount, q.rate) == (
        v1.version_id,
        Decimal("710.00"),
        Decimal("7.1"),
    )
    v2 = ledger.set_rates({"USD": ("7.0", "7.3")}, "feed", T0 + timedelta(seconds=5))
    assert ledger.quote("USD", "CNY", "100", "from", T0).rate_version == v2.version_id
    # Within the validity period the replaced version still quotes, later it is refused.
    old = ledger.quote(
        "USD", "CNY", "100", "from", T0 + timedelta(seconds=30), rate_version=v1.version_id
    )
    assert old.to_amount == Decimal("710.00")
    with pytest.raises(FailedPrecondition) as caught:
        ledger.quote(
            "USD", "CNY", "100", "from", T0 + timedelta(seconds=66), rate_version=v1.version_id
        )
    assert caught.value.code == "rate_expired" and "quote again" in caught.value.message
    with pytest.raises(NotFound, match="rate version 999 does not exist"):
        ledger.quote("USD", "CNY", "1", "from", T0, rate_version=999)


def test_foreign_cash_deposit_posts_at_the_quoted_version(ledger: EmbeddedLedger) -> None:
    account = open_account(ledger.engine)
    version = ledger.set_rates(RATES, "feed", T0).version_id
    quoted = ledger.quote("USD", "CNY", "100", "from", T0)
    posting = ledger.post_deposit(
        DepositRequest(
            ref(1),
            account_id=account.account_id,
            branch=BRANCH,
            currency="USD",
            amount="100",
            rate_version=version,
            now=T0 + timedelta(seconds=20),
        )
    )
    assert posting.rate_version == version
    assert posting.leg(account.account_id).amount == quoted.to_amount == Decimal("710.00")
    legs = {(leg.account_id, leg.currency): leg.amount for leg in posting.legs}
    assert legs == {
        (acc.internal_account_id(acc.VAULT_CASH, BRANCH, "USD"), "USD"): Decimal("-100.00"),
        (acc.internal_account_id(acc.FX_POSITION, BRANCH, "USD"), "USD"): Decimal("100.00"),
        (acc.internal_account_id(acc.FX_POSITION, BRANCH, "CNY"), "CNY"): Decimal("-710.00"),
        (account.account_id, "CNY"): Decimal("710.00"),
    }
    assert "100.00 USD as 710.00 CNY at 7.1" in posting.description


def test_stale_rate_version_is_refused(ledger: EmbeddedLedger) -> None:
    account = open_account(ledger.engine)
    v1 = ledger.set_rates(RATES, "feed", T0).version_id
    changed_at = T0 + timedelta(minutes=5)
    ledger.set_rates({"USD": ("7.3", "7.4")}, "feed", changed_at)
    common = dict(
        account_id=account.account_id, branch=BRANCH, currency="USD", amount="10", rate_version=v1
    )
    ok = ledger.post_deposit(
        DepositRequest(ref(1), now=changed_at + timedelta(seconds=59), **common)  # type: ignore[arg-type]
    )
    assert ok.leg(account.account_id).amount == Decimal("71.00")  # the old rate, as shown
    with pytest.raises(FailedPrecondition) as caught:
        ledger.post_deposit(
            DepositRequest(ref(2), now=changed_at + timedelta(seconds=61), **common)  # type: ignore[arg-type]
        )
    assert caught.value.code == "rate_expired"
    assert f"rate version {v1} was replaced at" in caught.value.message
    with pytest.raises(NotFound):
        ledger.post_deposit(DepositRequest(ref(3), now=T0, **{**common, "rate_version": 12345}))  # type: ignore[arg-type]
    with pytest.raises(FailedPrecondition, match="has no rate for GBP"):
        gbp = {**common, "currency": "GBP", "rate_version": v1 + 1}
        ledger.post_deposit(DepositRequest(ref(4), now=changed_at, **gbp))  # type: ignore[arg-type]


def test_foreign_withdrawal_debits_what_was_shown_even_if_rates_move(
    ledger: EmbeddedLedger,
) -> None:
    account = funded(ledger, "1000")
    v1 = ledger.set_rates(RATES, "feed", T0).version_id
    hold = ledger.authorise_withdrawal(
        WithdrawalRequest(
            ref("w"),
            account_id=account.account_id,
            branch=BRANCH,
            currency="USD",
            amount="100",
            rate_version=v1,
            now=T0,
        )
    )
    assert (hold.amount, hold.currency, hold.dispensed_amount, hold.dispensed_currency) == (
        Decimal("720.00"),
        "CNY",
        Decimal("100.00"),
        "USD",
    )
    # Rates move while the carrier travels; long after v1 expired the capture still posts v1.
    ledger.set_rates({"USD": ("7.5", "7.6")}, "feed", T0 + timedelta(seconds=1))
    posting = ledger.post_withdrawal(ref("c"), hold.hold_id, T0 + timedelta(minutes=10))
    assert posting.rate_version == v1
    assert posting.leg(account.account_id).amount == Decimal("-720.00")
    assert posting.leg(acc.internal_account_id(acc.VAULT_CASH, BRANCH, "USD")).amount == Decimal(
        "100.00"
    )
    with pytest.raises(FailedPrecondition, match="amount over balance"):
        ledger.authorise_withdrawal(
            WithdrawalRequest(
                ref("w2"),
                account_id=account.account_id,
                branch=BRANCH,
                currency="USD",
                amount="100",
                rate_version=v1 + 1,
                now=T0 + timedelta(minutes=10),
            )
        )
    # Reversing the FX withdrawal restores exactly what was debited, whatever the rates now.
    ledger.reverse(
        ReversalRequest(ref("r"), posting.entry_id, "carrier lost", T0 + timedelta(minutes=11))
    )
    assert ledger.balances("c1")[0].balance == Decimal("1000.00")


def test_metal_bought_and_sold_against_cash(ledger: EmbeddedLedger) -> None:
    gold = open_account(ledger.engine, kind="metal", currency="XAU")
    version = ledger.set_rates(RATES, "feed", T0).version_id
    # Cash handed in for gold: the customer buys grams at the ask.
    bought = ledger.post_deposit(
        DepositRequest(
            ref(1),
            account_id=gold.account_id,
            branch=BRANCH,
            currency="CNY",
            amount="5660",
            rate_version=version,
            now=T0,
        )
    )
    assert bought.leg(gold.account_id).amount == Decimal("10.000")
    # Gold delivered physically, in grams, from the same account.
    hold = ledger.authorise_withdrawal(
        WithdrawalRequest(
            ref("w"),
            account_id=gold.account_id,
            branch=BRANCH,
            currency="XAU",
            amount="2.5",
            now=T0,
        )
    )
    posting = ledger.post_withdrawal(ref("c"), hold.hold_id, T0)
    vault = acc.internal_account_id(acc.VAULT_METAL, BRANCH, "XAU")
    assert posting.leg(vault).amount == Decimal("2.500")
    assert ledger.balances("c1")[0].balance == Decimal("7.500")
    # Grams sold back for cash: at the bid, 7.5 g * 560 = 4200 CNY.
    sold = ledger.authorise_withdrawal(
        WithdrawalRequest(
            ref("w2"),
            account_id=gold.account_id,
            branch=BRANCH,
            currency="CNY",
            amount="4200",
            rate_version=version,
            now=T0,
        )
    )
    assert sold.amount == Decimal("7.500")


def test_concurrent_rate_updates_chain(engine: Engine, ledger: EmbeddedLedger) -> None:
    other = EmbeddedLedger(open_database(engine.url.render_as_string(False)))
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def push(i: int) -> None:
        barrier.wait()
        try:
            (ledger if i % 2 else other).set_rates({"USD": (f"7.{i}", f"7.{i}5")}, f"feed{i}", T0)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=push, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other.engine.dispose()
    assert errors == []
    with engine.connect() as conn:
        rows = conn.execute(select(fx_rate_versions).order_by(fx_rate_versions.c.version_id)).all()
    assert len(rows) == 6
    assert [r.superseded_at is None for r in rows] == [False] * 5 + [True]
