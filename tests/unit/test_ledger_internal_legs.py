"""Legs on internal accounts posted at commit (``ledger.internal_legs``): the branch vault's
row is not held through the posting transaction, and every ledger invariant still holds."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.engine import make_url

from branchline.server.ledger import accounts as acc
from branchline.server.ledger.adapter import EmbeddedLedger
from branchline.server.ledger.requests import DepositRequest, ReversalRequest
from branchline.server.ledger.schema import journal_legs
from branchline.server.ledger.statements import audit
from branchline.server.storage import open_database
from branchline.server.storage.engine import batch_transaction, savepoint
from tests.unit import ledger_support
from tests.unit.ledger_support import BRANCH, T0, funded, open_account, ref

ledger = ledger_support.ledger
VAULT = acc.internal_account_id(acc.VAULT_CASH, BRANCH, "CNY")


def deposit(core: EmbeddedLedger, account_id: str, amount: str, request: str):  # type: ignore[no-untyped-def]
    return core.post_deposit(
        DepositRequest(
            ref(request),
            account_id=account_id,
            branch=BRANCH,
            currency="CNY",
            amount=amount,
            now=T0,
        )
    )


def vault_balance(engine: Engine) -> Decimal:
    found = acc.get_account(engine, VAULT)
    assert found is not None
    return found.balance


def legs_in_table(engine: Engine, entry_id: int) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(journal_legs.c.account_id)
                .where(journal_legs.c.entry_id == entry_id)
                .order_by(journal_legs.c.leg_id)
            ).scalars()
        )


def test_vault_leg_is_inserted_at_commit(ledger: EmbeddedLedger) -> None:
    """Inside the batch the entry's vault leg waits (read back with its entry, no balance
    after yet); at the commit it is inserted after the customer's, with its balance."""
    account = funded(ledger, "100")
    engine = ledger.engine
    with batch_transaction(engine) as conn:
        posting = deposit(ledger, account.account_id, "25", "d1")
        assert posting.leg(account.account_id).balance_after == Decimal("125.00")
        assert posting.leg(VAULT).amount == Decimal("-25.00")
        assert posting.leg(VAULT).balance_after is None
        in_batch = conn.execute(
            select(func.count()).where(journal_legs.c.entry_id == posting.entry_id)
        ).scalar()
        assert in_batch == 1  # the customer's leg only
        again = ledger.find_posting(ref("d1"))
        assert again is not None and [leg.account_id for leg in again.legs] == [
            account.account_id,
            VAULT,
        ]
    assert legs_in_table(engine, posting.entry_id) == [account.account_id, VAULT]
    after = ledger.find_posting(ref("d1"))
    assert after is not None and after.leg(VAULT).balance_after == Decimal("-125.00")
    assert vault_balance(engine) == Decimal("-125.00")


def test_a_rolled_back_posting_takes_its_vault_leg_with_it(ledger: EmbeddedLedger) -> None:
    account = funded(ledger, "100")
    engine = ledger.engine
    with batch_transaction(engine) as conn:
        deposit(ledger, account.account_id, "10", "kept")
        with pytest.raises(RuntimeError), savepoint(conn):
            deposit(ledger, account.account_id, "7", "undone")
            raise RuntimeError("the message failed")
    assert ledger.find_posting(ref("undone")) is None
    assert vault_balance(engine) == Decimal("-110.00")
    assert acc.get_account(engine, account.account_id).balance == Decimal("110.00")  # type: ignore[union-attr]


def test_reversing_an_entry_of_the_same_transaction(ledger: EmbeddedLedger) -> None:
    """A reversal in the transaction that posted the entry reverses its waiting vault leg too."""
    account = funded(ledger, "100")
    with batch_transaction(ledger.engine):
        posting = deposit(ledger, account.account_id, "30", "d1")
        reversal = ledger.reverse(ReversalRequest(ref("r1"), posting.entry_id, "test", T0))
        assert reversal.leg(VAULT).amount == Decimal("30.00")
    assert vault_balance(ledger.engine) == Decimal("-100.00")


def lock_timeout_url(url: str, timeout: str) -> str:
    """``url`` whose connections give up waiting for a lock after ``timeout``."""
    parsed = make_url(url)
    options = f"{parsed.query.get('options', '')} -clock_timeout={timeout}".strip()
    return parsed.update_query_dict({"options": options}).render_as_string(hide_password=False)


def test_two_transactions_post_against_one_vault_without_waiting(pg_migrated_url: str) -> None:
    """PostgreSQL: one transaction posts a deposit and stays open; another posts against the
    same branch vault and commits meanwhile. With the vault's row locked at the posting the
    second would wait for the first's commit (here: fail on its lock timeout)."""
    engine = open_database(pg_migrated_url)
    impatient = open_database(lock_timeout_url(pg_migrated_url, "5s"))
    try:
        core, other = EmbeddedLedger(engine), EmbeddedLedger(impatient)
        first = funded(core, "100", customer_id="c1")
        second = open_account(engine, "c2")
        outcome: list[BaseException | None] = []

        def post_second() -> None:
            try:
                deposit(other, second.account_id, "20", "second")
                outcome.append(None)
            except BaseException as exc:  # reported to the test below
                outcome.append(exc)

        thread = threading.Thread(target=post_second)
        with batch_transaction(engine) as conn:
            deposit(core, first.account_id, "5", "first")
            thread.start()
            thread.join(30)
            assert outcome == [None], "the second posting waited for the first's commit"
            assert conn.execute(text("SELECT 1")).scalar() == 1  # still open
        assert vault_balance(engine) == Decimal("-125.00")
        assert audit(engine) == []
    finally:
        impatient.dispose()
        engine.dispose()
