"""Shared pieces of the tube tests: a populated database (terminals, customers, accounts,
back-office tellers), a controllable clock and message builders."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from branchline.server import fleet_registry
from branchline.server.auth import Principal
from branchline.server.dispatch.tasks import DispatchService
from branchline.server.ledger import accounts as acc
from branchline.server.ledger.adapter import EmbeddedLedger
from branchline.server.ledger.cards import add_customer, enroll_card
from branchline.server.ledger.postings import Reference
from branchline.server.ledger.requests import DepositRequest
from branchline.server.ledger.sessions import CustomerSessions
from branchline.server.ledger.statements import audit
from branchline.server.tube.service import TubeService
from branchline.v1 import tube_pb2 as pb

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SESSIONS = CustomerSessions(bytes(range(32)))
BO = Principal("teller", "BO-1")  # back office of BR-1
BO2 = Principal("teller", "BO-2")  # back office of BR-2
PLAIN_TELLER = Principal("teller", "T-9")  # BR-1, no back_office skill
CARD = "card-token-c1"
PAN_MASKED = "476173******0010"


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@dataclass
class Books:
    cash: str  # c1's CNY cash account, 1,000.00
    usd: str  # c1's USD cash account, 500.00
    metal: str  # c1's XAU account, 50.000 g
    bills: str  # c1's CNY bills account, empty
    theirs: str  # c2's CNY cash account


@dataclass
class World:
    engine: Engine
    ledger: EmbeddedLedger
    clock: Clock
    svc: TubeService
    books: Books
    pushed: list[pb.TubeTransaction] = field(default_factory=list)


def populate(engine: Engine) -> Books:
    for terminal, branch in (("K-1", "BR-1"), ("K-2", "BR-1"), ("K-9", "BR-2")):
        fleet_registry.register_terminal(
            engine, terminal, branch, "self_service", "test", [], "r1", T0
        )
    dispatch = DispatchService(engine)
    dispatch.add_branch("BR-1", "North")
    dispatch.add_branch("BR-2", "South")
    dispatch.add_teller("BO-1", "Back office one", "BR-1", ["back_office"])
    dispatch.add_teller("BO-2", "Back office two", "BR-2", ["back_office"])
    dispatch.add_teller("T-9", "Teller nine", "BR-1", ["loan"])
    ledger = EmbeddedLedger(engine)
    for customer in ("c1", "c2"):
        add_customer(engine, customer, f"Customer {customer}", T0)
    enroll_card(
        engine,
        card_token=CARD,
        pan_masked=PAN_MASKED,
        customer_id="c1",
        verification_method="visa_pvv",
        pvki=1,
        verification_value="1234",
        pvk_name="PVK",
        now=T0,
    )
    books = Books(
        cash=acc.open_account(engine, "c1", "cash", "CNY", T0, "A-CNY").account_id,
        usd=acc.open_account(engine, "c1", "cash", "USD", T0, "A-USD").account_id,
        metal=acc.open_account(engine, "c1", "metal", "XAU", T0, "A-XAU").account_id,
        bills=acc.open_account(engine, "c1", "bills", "CNY", T0, "A-BILLS").account_id,
        theirs=acc.open_account(engine, "c2", "cash", "CNY", T0, "B-CNY").account_id,
    )
    for account, currency, amount in (
        (books.cash, "CNY", "1000.00"),
        (books.usd, "USD", "500.00"),
        (books.metal, "XAU", "50.000"),
        (books.theirs, "CNY", "100.00"),
    ):
        ledger.post_deposit(
            DepositRequest(
                Reference("fund", account),
                account_id=account,
                branch="BR-1",
                currency=currency,
                amount=amount,
                now=T0,
            )
        )
    return books


@pytest.fixture
def world(engine: Engine) -> Iterator[World]:
    books = populate(engine)
    clock = Clock()
    ledger = EmbeddedLedger(engine)
    pushed: list[pb.TubeTransaction] = []
    svc = TubeService(engine, ledger, SESSIONS, clock=clock, notify=pushed.append)
    yield World(engine, ledger, clock, svc, books, pushed)
    assert audit(engine) == []


def token(terminal: str = "K-1", customer: str = "c1", at: datetime = T0) -> str:
    return SESSIONS.issue(terminal, CARD if customer == "c1" else "card-c2", customer, at)


def cash(amount: str, currency: str = "CNY") -> pb.TubeAsset:
    return pb.TubeAsset(kind=pb.ASSET_KIND_CASH, currency=currency, amount=amount)


def metal(grams: str, code: str = "XAU") -> pb.TubeAsset:
    return pb.TubeAsset(kind=pb.ASSET_KIND_METAL, currency=code, amount=grams)


def bill(
    amount: str,
    bill_id: str = "",
    instrument: str = "",
    maturity: str = "",
    currency: str = "CNY",
) -> pb.TubeAsset:
    return pb.TubeAsset(
        kind=pb.ASSET_KIND_BILL,
        currency=currency,
        amount=amount,
        bill=pb.BillInfo(bill_id=bill_id, instrument=instrument, maturity=maturity),
    )


def tube_open(
    kind: int,
    account: str,
    asset: pb.TubeAsset,
    txn: str,
    request: str | None = None,
    session: str | None = None,
    rate_version: int = 0,
) -> pb.TubeOpen:
    return pb.TubeOpen(
        request_id=request or f"{txn}-open",
        txn_id=txn,
        kind=kind,  # type: ignore[arg-type]
        session_token=token() if session is None else session,
        account_id=account,
        asset=asset,
        rate_version=rate_version,
    )


def tube_event(txn: str, kind: int, request: str, **kw: Any) -> pb.TubeEvent:
    return pb.TubeEvent(request_id=request, txn_id=txn, kind=kind, **kw)  # type: ignore[arg-type]


DEPOSIT = pb.TUBE_KIND_DEPOSIT
WITHDRAWAL = pb.TUBE_KIND_WITHDRAWAL
