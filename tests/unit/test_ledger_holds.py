"""Withdrawal holds: authorise, capture, release, expiry and the overdraft race."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine

from branchline.common.errors import DomainError, FailedPrecondition, NotFound
from branchline.server.ledger import accounts as acc
from branchline.server.ledger.adapter import EmbeddedLedger
from branchline.server.ledger.postings import Reference
from branchline.server.ledger.requests import WithdrawalRequest
from branchline.server.storage import open_database
from tests.unit import ledger_support
from tests.unit.ledger_support import BRANCH, T0, funded, ref

# The ledger over the shared `engine` (conftest), on SQLite and PostgreSQL.
ledger = ledger_support.ledger


def authorise(core: EmbeddedLedger, account_id: str, amount: str, request: str, **kw: object):  # type: ignore[no-untyped-def]
    args: dict[str, object] = dict(
        account_id=account_id, branch=BRANCH, currency="CNY", amount=amount, now=T0
    )
    args.update(kw)
    return core.authorise_withdrawal(WithdrawalRequest(ref(request), **args))  # type: ignore[arg-type]


def available(core: EmbeddedLedger, account_id: str) -> Decimal:
    found = acc.get_account(core.engine, account_id)
    assert found is not None
    return found.available


def test_authorise_reserves_then_capture_posts(ledger: EmbeddedLedger) -> None:
    account = funded(ledger, "100")
    hold = authorise(ledger, account.account_id, "60", "w1")
    assert (hold.status, hold.amount, hold.dispensed_amount) == (
        "active",
        Decimal("60.00"),
        Decimal("60.00"),
    )
    assert hold.expires_at == T0 + ledger.settings.hold_ttl
    assert available(ledger, account.account_id) == Decimal("40.00")
    with pytest.raises(
        FailedPrecondition, match="amount over balance: 40.01 CNY is more than the 40.00 CNY"
    ):
        authorise(ledger, account.account_id, "40.01", "w2")
    posting = ledger.post_withdrawal(ref("w1-capture"), hold.hold_id, T0)
    assert posting.kind == "withdrawal" and posting.hold_id == hold.hold_id
    assert posting.leg(account.account_id).amount == Decimal("-60.00")
    assert posting.leg(account.account_id).balance_after == Decimal("40.00")
    vault = acc.internal_account_id(acc.VAULT_CASH, BRANCH, "CNY")
    assert posting.leg(vault).amount == Decimal("60.00")
    after = acc.get_account(ledger.engine, account.account_id)
    assert after is not None and (after.balance, after.held) == (Decimal("40.00"), 0)
    stored = ledger.get_hold(hold.hold_id)
    assert (
        stored is not None and stored.status == "captured" and stored.entry_id == posting.entry_id
    )


def test_authorise_and_capture_are_idempotent(ledger: EmbeddedLedger) -> None:
    account = funded(ledger, "100")
    hold = authorise(ledger, account.account_id, "30", "w1")
    again = authorise(ledger, account.account_id, "30", "w1")
    assert again.replayed and again.hold_id == hold.hold_id
    assert available(ledger, account.account_id) == Decimal("70.00")
    with pytest.raises(FailedPrecondition) as caught:
        authorise(ledger, account.account_id, "31", "w1")
    assert caught.value.code == "reference_reused"
    first = ledger.post_withdrawal(ref("c1"), hold.hold_id, T0)
    assert ledger.post_withdrawal(ref("c1"), hold.hold_id, T0).entry_id == first.entry_id
    # A second capture under another key still posts nothing new.
    other = ledger.post_withdrawal(ref("c2"), hold.hold_id, T0)
    assert other.replayed and other.entry_id == first.entry_id
    assert ledger.balances("c1")[0].balance == Decimal("70.00")


def test_release_exactly_once(ledger: EmbeddedLedger) -> None:
    account = funded(ledger, "100")
    hold = authorise(ledger, account.account_id, "60", "w1")
    first = ledger.release_hold(hold.hold_id, "carrier not taken", T0, terminal_id="t1")
    assert (
        first.released
        and first.hold.status == "released"
        and first.hold.reason == "carrier not taken"
    )
    assert available(ledger, account.account_id) == Decimal("100.00")
    second = ledger.release_hold(hold.hold_id, "recovery", T0)
    assert not second.released and second.hold.reason == "carrier not taken"
    assert available(ledger, account.account_id) == Decimal("100.00")
    with pytest.raises(FailedPrecondition) as caught:
        ledger.post_withdrawal(ref("late"), hold.hold_id, T0)
    assert caught.value.code == "hold_released"


def test_captured_hold_cannot_be_released(ledger: EmbeddedLedger) -> None:
    account = funded(ledger, "100")
    hold = authorise(ledger, account.account_id, "60", "w1")
    posting = ledger.post_withdrawal(ref("c"), hold.hold_id, T0)
    with pytest.raises(
        FailedPrecondition, match=f"captured by entry {posting.entry_id}; reverse"
    ) as caught:
        ledger.release_hold(hold.hold_id, "recovery", T0)
    assert caught.value.code == "hold_captured"


def test_someone_elses_hold_is_refused(ledger: EmbeddedLedger) -> None:
    account = funded(ledger, "100")
    hold = authorise(ledger, account.account_id, "60", "w1")
    with pytest.raises(FailedPrecondition, match="authorised by another terminal") as caught:
        ledger.post_withdrawal(Reference("t2", "c"), hold.hold_id, T0)
    assert caught.value.code == "not_owner"
    with pytest.raises(FailedPrecondition, match="authorised by another terminal"):
        ledger.release_hold(hold.hold_id, "x", T0, terminal_id="t2")
    with pytest.raises(FailedPrecondition, match="belongs to another customer"):
        authorise(ledger, account.account_id, "1", "w9", customer_id="c2")
    with pytest.raises(NotFound, match="hold 'nope' does not exist"):
        ledger.post_withdrawal(ref("x"), "nope", T0)
    with pytest.raises(NotFound):
        ledger.release_hold("nope", "x", T0)


def test_expired_hold_stops_reserving(ledger: EmbeddedLedger) -> None:
    account = funded(ledger, "100")
    hold = authorise(ledger, account.account_id, "60", "w1")
    later = T0 + ledger.settings.hold_ttl + timedelta(seconds=1)
    # The next posting on the account ends the expired hold first, so 90 is available.
    other = authorise(ledger, account.account_id, "90", "w2", now=later)
    stored = ledger.get_hold(hold.hold_id)
    assert stored is not None and stored.status == "expired"
    # The expired hold can no longer be captured: the balance does not cover both.
    with pytest.raises(FailedPrecondition, match="expired at") as caught:
        ledger.post_withdrawal(ref("c1"), hold.hold_id, later)
    assert caught.value.code == "hold_expired"
    ledger.release_hold(other.hold_id, "walked away", later)
    # With the balance free again, a late capture of the expired hold still posts: the cash
    # was handed over.
    posting = ledger.post_withdrawal(ref("c1"), hold.hold_id, later)
    assert posting.leg(account.account_id).balance_after == Decimal("40.00")
    assert not ledger.release_hold(other.hold_id, "again", later).released


def test_sweep_expires_holds(ledger: EmbeddedLedger) -> None:
    account = funded(ledger, "100")
    authorise(ledger, account.account_id, "10", "w1")
    authorise(ledger, account.account_id, "20", "w2", now=T0 + timedelta(minutes=10))
    assert ledger.expire_holds(T0 + ledger.settings.hold_ttl) == 1
    assert available(ledger, account.account_id) == Decimal("80.00")
    assert ledger.expire_holds(T0 + timedelta(days=1)) == 1
    assert ledger.expire_holds(T0 + timedelta(days=1)) == 0
    assert available(ledger, account.account_id) == Decimal("100.00")


def _race(n: int, action: Callable[[int], object]) -> tuple[list[object], list[DomainError]]:
    barrier = threading.Barrier(n)
    done: list[object] = []
    refused: list[DomainError] = []
    crashed: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            done.append(action(i))
        except DomainError as exc:
            refused.append(exc)
        except BaseException as exc:  # noqa: BLE001 - reported below
            crashed.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert crashed == []
    return done, refused


@pytest.fixture
def replica(engine: Engine) -> Iterator[EmbeddedLedger]:
    """A second server replica: its own engine on the same database."""
    core = EmbeddedLedger(open_database(engine.url.render_as_string(False)))
    yield core
    core.engine.dispose()


def test_two_concurrent_withdrawals_cannot_both_pass(
    ledger: EmbeddedLedger, replica: EmbeddedLedger
) -> None:
    account = funded(ledger, "100")
    cores = [ledger, replica]
    done, refused = _race(2, lambda i: authorise(cores[i], account.account_id, "60", f"w{i}"))
    assert len(done) == 1 and len(refused) == 1
    assert refused[0].code == "insufficient_funds"
    assert available(ledger, account.account_id) == Decimal("40.00")


def test_many_concurrent_withdrawals_spend_exactly_the_balance(
    ledger: EmbeddedLedger, replica: EmbeddedLedger
) -> None:
    account = funded(ledger, "100")
    cores = [ledger, replica]

    def withdraw(i: int) -> object:
        core = cores[i % 2]
        hold = authorise(core, account.account_id, "30", f"w{i}")
        return core.post_withdrawal(ref(f"c{i}"), hold.hold_id, T0)

    done, refused = _race(10, withdraw)
    assert len(done) == 3 and len(refused) == 7
    assert {e.code for e in refused} == {"insufficient_funds"}
    assert ledger.balances("c1")[0].balance == Decimal("10.00")


def test_capture_and_release_racing_end_one_way(
    ledger: EmbeddedLedger, replica: EmbeddedLedger
) -> None:
    account = funded(ledger, "100")
    hold = authorise(ledger, account.account_id, "60", "w1")

    def act(i: int) -> object:
        if i == 0:
            return ledger.post_withdrawal(ref("c"), hold.hold_id, T0)
        return replica.release_hold(hold.hold_id, "recovery", T0)

    done, refused = _race(2, act)
    stored = ledger.get_hold(hold.hold_id)
    assert stored is not None
    if stored.status == "captured":
        assert [e.code for e in refused] == ["hold_captured"]
        assert ledger.balances("c1")[0].balance == Decimal("40.00")
    else:
        assert stored.status == "released" and [e.code for e in refused] == ["hold_released"]
        assert ledger.balances("c1")[0].balance == Decimal("100.00")
    assert len(done) == 1
    assert ledger.balances("c1")[0].held == 0


def test_withdrawal_bad_inputs(ledger: EmbeddedLedger) -> None:
    account = funded(ledger, "100")
    cases = [
        ({"amount": "-1"}, "negative_amount"),
        ({"amount": "0"}, "zero_amount"),
        ({"amount": "1000000.01"}, "amount_over_limit"),
        ({"amount": "1.001"}, "too_many_decimals"),
        ({"currency": "QQQ"}, "unknown_currency"),
        ({"account_id": "missing"}, "unknown_account"),
        ({"currency": "USD"}, "rate_version_required"),
        ({"bill_id": "B1"}, "invalid_argument"),
        ({"amount": "100.01"}, "insufficient_funds"),
    ]
    for i, (changes, code) in enumerate(cases):
        args: dict[str, object] = {"account_id": account.account_id, "amount": "1", **changes}
        with pytest.raises(DomainError) as caught:
            authorise(ledger, request=f"bad{i}", **args)  # type: ignore[arg-type]
        assert caught.value.code == code, caught.value.message
        assert caught.value.message.startswith("withdrawal."), caught.value.message
    assert available(ledger, account.account_id) == Decimal("100.00")
