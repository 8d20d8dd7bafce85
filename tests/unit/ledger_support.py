"""Shared pieces of the ledger tests: the ledger over the shared ``engine`` (conftest), builders."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine

from branchline.server.ledger import accounts as acc
from branchline.server.ledger.accounts import Account
from branchline.server.ledger.adapter import EmbeddedLedger
from branchline.server.ledger.cards import add_customer
from branchline.server.ledger.postings import Reference
from branchline.server.ledger.requests import DepositRequest
from branchline.server.ledger.statements import audit

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
BRANCH = "north"


@pytest.fixture
def ledger(engine: Engine) -> Iterator[EmbeddedLedger]:
    core = EmbeddedLedger(engine)
    yield core
    # Whatever a test did, the books must still balance.
    assert audit(engine) == []


def ref(request_id: str | int, terminal_id: str = "t1") -> Reference:
    return Reference(terminal_id, str(request_id))


def customer(engine: Engine, customer_id: str = "c1") -> str:
    add_customer(engine, customer_id, f"Customer {customer_id}", T0)
    return customer_id


def open_account(
    engine: Engine, customer_id: str = "c1", kind: str = "cash", currency: str = "CNY"
) -> Account:
    customer(engine, customer_id)
    return acc.open_account(engine, customer_id, kind, currency, T0)


def funded(
    ledger: EmbeddedLedger, amount: str, currency: str = "CNY", customer_id: str = "c1"
) -> Account:
    """A cash (or metal) account holding ``amount`` after one deposit."""
    kind = "metal" if currency in ("XAU", "XAG") else "cash"
    account = open_account(ledger.engine, customer_id, kind, currency)
    ledger.post_deposit(
        DepositRequest(
            ref(f"fund-{account.account_id}"),
            account_id=account.account_id,
            branch=BRANCH,
            currency=currency,
            amount=amount,
            now=T0,
        )
    )
    return account
