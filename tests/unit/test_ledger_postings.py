"""Double-entry postings, idempotency, reversals, bills and statements (SQLite and PostgreSQL)."""
# long-module: the scenarios of one service, sharing its fixtures; split by topic would repeat them

from __future__ import annotations

import threading
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, func, select, update

from branchline.common.errors import DomainError, FailedPrecondition, InvalidArgument, NotFound
from branchline.server.ledger import accounts as acc
from branchline.server.ledger.adapter import EmbeddedLedger
from branchline.server.ledger.postings import Reference
from branchline.server.ledger.requests import (
    BillDeposit,
    DepositRequest,
    ReversalRequest,
    WithdrawalRequest,
)
from branchline.server.ledger.schema import accounts, journal_entries, journal_legs
from branchline.server.ledger.statements import audit
from branchline.server.ledger.transfers import post_transfer
from branchline.server.storage import open_database
from tests.unit import ledger_support
from tests.unit.ledger_support import BRANCH, T0, funded, open_account, ref

# The ledger over the shared `engine` (conftest), on SQLite and PostgreSQL.
ledger = ledger_support.ledger

VAULT_CNY = acc.internal_account_id(acc.VAULT_CASH, BRANCH, "CNY")


def entry_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(journal_entries)).scalar_one())


def test_deposit_posts_balanced_legs_and_running_balances(ledger: EmbeddedLedger) -> None:
    account = open_account(ledger.engine)
    posting = ledger.post_deposit(
        DepositRequest(
            ref(1),
            account_id=account.account_id,
            branch=BRANCH,
            currency="CNY",
            amount="250.50",
            now=T0,
        )
    )
    assert not posting.replayed and posting.kind == "deposit"
    assert [(leg.account_id, leg.amount) for leg in posting.legs] == [
        (account.account_id, Decimal("250.50")),
        (VAULT_CNY, Decimal("-250.50")),
    ]
    assert posting.leg(account.account_id).balance_after == Decimal("250.50")
    second = ledger.post_deposit(
        DepositRequest(
            ref(2),
            account_id=account.account_id,
            branch=BRANCH,
            currency="CNY",
            amount="49.50",
            now=T0,
        )
    )
    assert second.leg(account.account_id).balance_after == Decimal("300.00")
    # The vault is an asset account: minus what it physically holds.
    vault = acc.get_account(ledger.engine, VAULT_CNY)
    assert vault is not None and vault.internal and vault.balance == Decimal("-300.00")
    [balance] = ledger.balances("c1")
    assert (balance.balance, balance.held, balance.available) == (
        Decimal("300.00"),
        Decimal("0.00"),
        Decimal("300.00"),
    )


def test_same_reference_twice_posts_once(ledger: EmbeddedLedger) -> None:
    account = open_account(ledger.engine)
    kwargs = dict(account_id=account.account_id, branch=BRANCH, currency="CNY", amount="10", now=T0)
    first = ledger.post_deposit(DepositRequest(ref("k1"), **kwargs))  # type: ignore[arg-type]
    again = ledger.post_deposit(DepositRequest(ref("k1"), **kwargs))  # type: ignore[arg-type]
    assert again.replayed and again.entry_id == first.entry_id and again.legs == first.legs
    assert entry_count(ledger.engine) == 1
    assert ledger.find_posting(ref("k1")) == again
    assert ledger.find_posting(ref("other")) is None
    # The same key from another terminal is another transaction.
    ledger.post_deposit(DepositRequest(Reference("t2", "k1"), **kwargs))  # type: ignore[arg-type]
    # The same key for a different request is refused, not silently replayed.
    with pytest.raises(FailedPrecondition) as caught:
        ledger.post_deposit(DepositRequest(ref("k1"), **{**kwargs, "amount": "11"}))  # type: ignore[arg-type]
    assert caught.value.code == "reference_reused" and "t1/k1" in caught.value.message
    assert ledger.balances("c1")[0].balance == Decimal("20.00")


def test_same_reference_from_two_replicas_at_once_posts_once(
    engine: Engine, ledger: EmbeddedLedger
) -> None:
    account = open_account(engine)
    replicas = [ledger, EmbeddedLedger(open_database(str(engine.url.render_as_string(False))))]
    results: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def post(core: EmbeddedLedger) -> None:
        barrier.wait()
        try:
            p = core.post_deposit(
                DepositRequest(
                    ref("same"),
                    account_id=account.account_id,
                    branch=BRANCH,
                    currency="CNY",
                    amount="5",
                    now=T0,
                )
            )
            results.append(p.entry_id)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=post, args=(replicas[i % 2],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    replicas[1].engine.dispose()
    assert errors == []
    assert len(set(results)) == 1 and len(results) == 8
    assert entry_count(engine) == 1
    assert ledger.balances("c1")[0].balance == Decimal("5.00")


def test_reversal_exactly_once(ledger: EmbeddedLedger) -> None:
    account = open_account(ledger.engine)
    deposit = ledger.post_deposit(
        DepositRequest(
            ref(1),
            account_id=account.account_id,
            branch=BRANCH,
            currency="CNY",
            amount="80",
            now=T0,
        )
    )
    reversal = ledger.reverse(ReversalRequest(ref("r1"), deposit.entry_id, "customer disputed", T0))
    assert reversal.reverses_entry_id == deposit.entry_id and reversal.kind == "reversal"
    assert [leg.amount for leg in reversal.legs] == [-leg.amount for leg in deposit.legs]
    assert "customer disputed" in reversal.description
    # Again with the same reference, or another one: the one reversal comes back.
    assert (
        ledger.reverse(
            ReversalRequest(ref("r1"), deposit.entry_id, "customer disputed", T0)
        ).entry_id
        == reversal.entry_id
    )
    again = ledger.reverse(ReversalRequest(ref("r2"), deposit.entry_id, "recovery", T0))
    assert again.replayed and again.entry_id == reversal.entry_id
    assert ledger.balances("c1")[0].balance == 0
    assert entry_count(ledger.engine) == 2
    with pytest.raises(FailedPrecondition) as caught:
        ledger.reverse(ReversalRequest(ref("r3"), reversal.entry_id, "undo", T0))
    assert caught.value.code == "not_reversible"
    with pytest.raises(NotFound, match="entry 999 does not exist"):
        ledger.reverse(ReversalRequest(ref("r4"), 999, "x", T0))


def test_concurrent_reversals_post_one(engine: Engine, ledger: EmbeddedLedger) -> None:
    account = open_account(engine)
    deposit = ledger.post_deposit(
        DepositRequest(
            ref(1),
            account_id=account.account_id,
            branch=BRANCH,
            currency="CNY",
            amount="80",
            now=T0,
        )
    )
    other = EmbeddedLedger(open_database(engine.url.render_as_string(False)))
    barrier = threading.Barrier(6)
    ids: list[int] = []

    def run(i: int) -> None:
        barrier.wait()
        core = ledger if i % 2 else other
        ids.append(
            core.reverse(ReversalRequest(ref(f"rev-{i}"), deposit.entry_id, "race", T0)).entry_id
        )

    threads = [threading.Thread(target=run, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other.engine.dispose()
    assert len(ids) == 6 and len(set(ids)) == 1
    assert entry_count(engine) == 2


def test_reversal_that_would_overdraw_is_refused(ledger: EmbeddedLedger) -> None:
    account = funded(ledger, "100")
    deposit = ledger.find_posting(ref(f"fund-{account.account_id}"))
    assert deposit is not None
    hold = ledger.authorise_withdrawal(
        WithdrawalRequest(
            ref("w"),
            account_id=account.account_id,
            branch=BRANCH,
            currency="CNY",
            amount="60",
            now=T0,
        )
    )
    ledger.post_withdrawal(ref("w-post"), hold.hold_id, T0)
    with pytest.raises(FailedPrecondition, match="amount over balance") as caught:
        ledger.reverse(ReversalRequest(ref("r"), deposit.entry_id, "wrong count", T0))
    assert caught.value.code == "insufficient_funds"


def test_reversal_same_terminal_only_when_asked(ledger: EmbeddedLedger) -> None:
    account = open_account(ledger.engine)
    deposit = ledger.post_deposit(
        DepositRequest(
            ref(1), account_id=account.account_id, branch=BRANCH, currency="CNY", amount="8", now=T0
        )
    )
    with pytest.raises(FailedPrecondition, match="posted by another terminal"):
        ledger.reverse(
            ReversalRequest(Reference("t9", "r"), deposit.entry_id, "x", T0, same_terminal=True)
        )
    ledger.reverse(
        ReversalRequest(Reference("t1", "r"), deposit.entry_id, "x", T0, same_terminal=True)
    )


def test_metal_deposit_in_grams(ledger: EmbeddedLedger) -> None:
    gold = open_account(ledger.engine, kind="metal", currency="XAU")
    posting = ledger.post_deposit(
        DepositRequest(
            ref(1),
            account_id=gold.account_id,
            branch=BRANCH,
            currency="XAU",
            amount="31.104",
            now=T0,
        )
    )
    vault = acc.internal_account_id(acc.VAULT_METAL, BRANCH, "XAU")
    assert posting.leg(vault).amount == Decimal("-31.104")
    assert "31.104 g XAU" in posting.description
    with pytest.raises(InvalidArgument, match="too_many_decimals|more than 3 decimal"):
        ledger.post_deposit(
            DepositRequest(
                ref(2),
                account_id=gold.account_id,
                branch=BRANCH,
                currency="XAU",
                amount="1.0005",
                now=T0,
            )
        )
    with pytest.raises(InvalidArgument) as caught:
        acc.open_account(ledger.engine, "c1", "metal", "CNY", T0)
    assert caught.value.code == "currency_mismatch"


# long: one end-to-end scenario, step by step, over one stack of processes
def test_bill_deposit_withdrawal_and_reversal(ledger: EmbeddedLedger) -> None:
    bills = open_account(ledger.engine, kind="bills", currency="CNY")
    bill = BillDeposit("BA-2026-0001", "bank_acceptance", date(2026, 9, 1))
    posting = ledger.post_deposit(
        DepositRequest(
            ref(1),
            account_id=bills.account_id,
            branch=BRANCH,
            currency="CNY",
            amount="50000",
            bill=bill,
            now=T0,
        )
    )
    assert posting.kind == "bill_deposit" and "BA-2026-0001" in posting.description
    custody = acc.internal_account_id(acc.BILLS_CUSTODY, BRANCH, "CNY")
    assert posting.leg(custody).amount == Decimal("-50000.00")
    [held] = ledger.bills("c1")
    assert (held.bill_id, held.face_value, held.maturity, held.status) == (
        "BA-2026-0001",
        Decimal("50000.00"),
        date(2026, 9, 1),
        "held",
    )
    with pytest.raises(FailedPrecondition, match="already held"):
        ledger.post_deposit(
            DepositRequest(
                ref(2),
                account_id=bills.account_id,
                branch=BRANCH,
                currency="CNY",
                amount="50000",
                bill=bill,
                now=T0,
            )
        )
    # Withdrawing names the bill; its face value must match.
    with pytest.raises(InvalidArgument, match="face value of 50,000.00 CNY"):
        ledger.authorise_withdrawal(
            WithdrawalRequest(
                ref("w0"),
                account_id=bills.account_id,
                branch=BRANCH,
                currency="CNY",
                amount="1",
                bill_id=bill.bill_id,
                now=T0,
            )
        )
    hold = ledger.authorise_withdrawal(
        WithdrawalRequest(
            ref("w1"),
            account_id=bills.account_id,
            branch=BRANCH,
            currency="CNY",
            amount="50000",
            bill_id=bill.bill_id,
            now=T0,
        )
    )
    with pytest.raises(FailedPrecondition, match="already being withdrawn"):
        ledger.authorise_withdrawal(
            WithdrawalRequest(
                ref("w2"),
                account_id=bills.account_id,
                branch=BRANCH,
                currency="CNY",
                amount="50000",
                bill_id=bill.bill_id,
                now=T0,
            )
        )
    out = ledger.post_withdrawal(ref("w1-post"), hold.hold_id, T0)
    assert out.kind == "bill_withdrawal"
    assert ledger.bills("c1") == [] and ledger.balances("c1")[0].balance == 0
    # Reversing the withdrawal puts the bill back in custody; reversing the deposit then
    # takes it out again.
    ledger.reverse(ReversalRequest(ref("r1"), out.entry_id, "carrier lost", T0))
    assert [b.status for b in ledger.bills("c1")] == ["held"]
    ledger.reverse(ReversalRequest(ref("r2"), posting.entry_id, "wrong bill", T0))
    assert ledger.bills("c1") == []
    # A withdrawn bill can be deposited again.
    ledger.post_deposit(
        DepositRequest(
            ref(3),
            account_id=bills.account_id,
            branch=BRANCH,
            currency="CNY",
            amount="50000",
            bill=bill,
            now=T0,
        )
    )
    assert [b.status for b in ledger.bills("c1")] == ["held"]


def test_bad_bill_deposits(ledger: EmbeddedLedger) -> None:
    bills = open_account(ledger.engine, kind="bills", currency="CNY")
    cash = open_account(ledger.engine, kind="cash", currency="CNY")
    bill = BillDeposit("B1", "bank_acceptance", date(2026, 9, 1))
    common = dict(branch=BRANCH, currency="CNY", amount="100", now=T0)
    with pytest.raises(InvalidArgument, match="deposit.bill"):
        ledger.post_deposit(DepositRequest(ref(1), account_id=bills.account_id, **common))  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="deposit.bill"):
        ledger.post_deposit(DepositRequest(ref(2), account_id=cash.account_id, bill=bill, **common))  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="deposit.bill.maturity: 2026-01-01 is past"):
        ledger.post_deposit(
            DepositRequest(
                ref(3),
                account_id=bills.account_id,
                bill=BillDeposit("B2", "x", date(2026, 1, 1)),
                **common,  # type: ignore[arg-type]
            )
        )
    with pytest.raises(InvalidArgument, match="USD bill cannot go into a CNY"):
        ledger.post_deposit(
            DepositRequest(
                ref(4),
                account_id=bills.account_id,
                bill=bill,
                **{**common, "currency": "USD"},  # type: ignore[arg-type]
            )
        )


def test_bad_inputs_are_refused_with_clear_messages(ledger: EmbeddedLedger) -> None:
    account = open_account(ledger.engine)
    other = open_account(ledger.engine, customer_id="c2")

    def deposit(request: object = "x", **changes: object) -> None:
        args: dict[str, object] = dict(
            account_id=account.account_id, branch=BRANCH, currency="CNY", amount="10", now=T0
        )
        args.update(changes)
        ledger.post_deposit(DepositRequest(ref(str(request)), **args))  # type: ignore[arg-type]

    cases: list[tuple[dict[str, object], str, str]] = [
        ({"amount": "-10"}, "negative_amount", "deposit.amount: -10 is negative"),
        ({"amount": "0"}, "zero_amount", "deposit.amount: must be more than zero"),
        ({"amount": "5000000"}, "amount_over_limit", "over the per-transaction limit"),
        ({"amount": "1.234"}, "too_many_decimals", "more than 2 decimal(s) for CNY"),
        ({"amount": 10.0}, "invalid_amount", "not float"),
        ({"currency": "ABC"}, "unknown_currency", "deposit.currency: 'ABC' is not a currency"),
        ({"account_id": "nope"}, "unknown_account", "account 'nope' does not exist"),
        ({"account_id": VAULT_CNY}, "not_owner", "internal account"),
        ({"customer_id": "c2"}, "not_owner", "belongs to another customer"),
        ({"branch": ""}, "invalid_argument", "deposit.branch: must not be empty"),
        ({"currency": "USD"}, "rate_version_required", "deposit.rate_version"),
    ]
    ledger.post_deposit(
        DepositRequest(
            ref("seed"),
            account_id=account.account_id,
            branch=BRANCH,
            currency="CNY",
            amount="1",
            now=T0,
        )
    )
    for changes, code, text in cases:
        with pytest.raises(DomainError) as caught:
            deposit(**changes)
        assert caught.value.code == code, (changes, caught.value.message)
        assert text in caught.value.message, (changes, caught.value.message)
    with pytest.raises(InvalidArgument, match="deposit.reference.request_id: must not be empty"):
        deposit("")
    with pytest.raises(DomainError, match="amount over balance") as over:
        ledger.authorise_withdrawal(
            WithdrawalRequest(
                ref("w"),
                account_id=account.account_id,
                branch=BRANCH,
                currency="CNY",
                amount="1.01",
                now=T0,
            )
        )
    assert over.value.code == "insufficient_funds"
    assert "1.01 CNY is more than the 1.00 CNY available" in over.value.message
    with pytest.raises(NotFound):
        ledger.balances("nobody")
    assert other.balance == 0
    assert entry_count(ledger.engine) == 1  # nothing half-written by any refusal


def test_transfer_legs_must_balance(ledger: EmbeddedLedger) -> None:
    a = funded(ledger, "100")
    b = open_account(ledger.engine, customer_id="c2")
    settings = ledger.settings
    p = post_transfer(
        ledger.engine,
        ref("t"),
        [(a.account_id, "CNY", "-40"), (b.account_id, "CNY", "40")],
        "gift",
        T0,
        settings,
    )
    assert p.leg(b.account_id).balance_after == Decimal("40.00")
    with pytest.raises(InvalidArgument, match=r"do not sum to zero \(CNY -1\)"):
        post_transfer(
            ledger.engine,
            ref("u"),
            [(a.account_id, "CNY", "-41"), (b.account_id, "CNY", "40")],
            "x",
            T0,
            settings,
        )
    with pytest.raises(FailedPrecondition, match="amount over balance"):
        post_transfer(
            ledger.engine,
            ref("v"),
            [(a.account_id, "CNY", "-61"), (b.account_id, "CNY", "61")],
            "x",
            T0,
            settings,
        )
    with pytest.raises(InvalidArgument, match="holds CNY, not USD"):
        post_transfer(
            ledger.engine,
            ref("w"),
            [(a.account_id, "USD", "-1"), (b.account_id, "USD", "1")],
            "x",
            T0,
            settings,
        )


def test_statement_running_balances(ledger: EmbeddedLedger) -> None:
    account = open_account(ledger.engine)
    amounts = ["100", "20.50", "3"]
    for i, amount in enumerate(amounts):
        ledger.post_deposit(
            DepositRequest(
                ref(i),
                account_id=account.account_id,
                branch=BRANCH,
                currency="CNY",
                amount=amount,
                now=T0 + timedelta(minutes=i),
            )
        )
    hold = ledger.authorise_withdrawal(
        WithdrawalRequest(
            ref("w"),
            account_id=account.account_id,
            branch=BRANCH,
            currency="CNY",
            amount="50",
            now=T0 + timedelta(minutes=5),
        )
    )
    ledger.post_withdrawal(ref("wp"), hold.hold_id, T0 + timedelta(minutes=6))
    full = ledger.statement(account.account_id, limit=10)
    assert [(r.kind, r.amount, r.balance_after) for r in full.rows] == [
        ("deposit", Decimal("100.00"), Decimal("100.00")),
        ("deposit", Decimal("20.50"), Decimal("120.50")),
        ("deposit", Decimal("3.00"), Decimal("123.50")),
        ("withdrawal", Decimal("-50.00"), Decimal("73.50")),
    ]
    assert full.opening_balance == 0 and full.account.balance == Decimal("73.50")
    assert full.rows[-1].at == T0 + timedelta(minutes=6)
    last_two = ledger.statement(account.account_id, limit=2)
    assert [r.balance_after for r in last_two.rows] == [Decimal("123.50"), Decimal("73.50")]
    assert last_two.opening_balance == Decimal("120.50")
    since = ledger.statement(account.account_id, limit=10, since=T0 + timedelta(minutes=1))
    assert len(since.rows) == 3
    empty = ledger.statement(account.account_id, since=T0 + timedelta(days=1))
    assert empty.rows == () and empty.opening_balance == Decimal("73.50")
    with pytest.raises(InvalidArgument, match="statement.limit: 0 is not 1 to 500"):
        ledger.statement(account.account_id, limit=0)
    with pytest.raises(NotFound, match="statement.account_id: 'zz' does not exist"):
        ledger.statement("zz")


def test_audit_catches_a_tampered_balance(engine: Engine, ledger: EmbeddedLedger) -> None:
    account = funded(ledger, "10")
    assert audit(engine) == []
    with engine.begin() as conn:
        conn.execute(
            update(accounts)
            .where(accounts.c.account_id == account.account_id)
            .values(balance_minor=1)
        )
    problems = audit(engine)
    assert any("balance 1, legs sum to 1000" in p for p in problems)
    with engine.begin() as conn:
        conn.execute(
            update(accounts)
            .where(accounts.c.account_id == account.account_id)
            .values(balance_minor=1000)
        )
        conn.execute(
            update(journal_legs)
            .where(journal_legs.c.account_id == VAULT_CNY)
            .values(amount_minor=-999)
        )
    assert any("CNY legs sum to 1" in p for p in audit(engine))
    with engine.begin() as conn:
        conn.execute(
            update(journal_legs)
            .where(journal_legs.c.account_id == VAULT_CNY)
            .values(amount_minor=-1000)
        )


def test_cards_link_to_one_account_per_kind_and_currency(ledger: EmbeddedLedger) -> None:
    from branchline.server.ledger.cards import enroll_card

    cny = open_account(ledger.engine)
    usd = open_account(ledger.engine, currency="USD")
    cny2 = acc.open_account(ledger.engine, "c1", "cash", "CNY", T0, account_id="C1-CNY-2")
    foreign = open_account(ledger.engine, customer_id="c2")
    enroll_card(
        ledger.engine,
        card_token="tok1",
        pan_masked="622202******1234",
        customer_id="c1",
        verification_method="visa_pvv",
        pvki=1,
        verification_value="1234",
        pvk_name="pvk",
        now=T0,
    )
    acc.link_card(ledger.engine, "tok1", cny.account_id, T0)
    acc.link_card(ledger.engine, "tok1", usd.account_id, T0)
    assert {a.account_id for a in ledger.accounts_for_card("tok1")} == {
        cny.account_id,
        usd.account_id,
    }
    acc.link_card(ledger.engine, "tok1", cny2.account_id, T0)  # replaces the CNY cash link
    found = acc.card_account(ledger.engine, "tok1", "cash", "CNY")
    assert found is not None and found.account_id == "C1-CNY-2"
    with pytest.raises(InvalidArgument, match="belongs to another customer"):
        acc.link_card(ledger.engine, "tok1", foreign.account_id, T0)
    with pytest.raises(NotFound):
        acc.link_card(ledger.engine, "nope", cny.account_id, T0)
    # Opening with an explicit id is idempotent; a clash is refused.
    assert (
        acc.open_account(ledger.engine, "c1", "cash", "CNY", T0, account_id="C1-CNY-2").account_id
        == "C1-CNY-2"
    )
    with pytest.raises(InvalidArgument, match="exists for another use"):
        acc.open_account(ledger.engine, "c1", "cash", "USD", T0, account_id="C1-CNY-2")
    with pytest.raises(NotFound, match="customer 'ghost' does not exist"):
        acc.open_account(ledger.engine, "ghost", "cash", "CNY", T0)
    with pytest.raises(InvalidArgument, match="'savings' is not one of"):
        acc.open_account(ledger.engine, "c1", "savings", "CNY", T0)
