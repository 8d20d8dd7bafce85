"""Tube transactions in the service, on SQLite and (when configured) PostgreSQL: deposits of
cash, metal and a bill through count and confirmation; withdrawals delivered, reversed (the
hold released exactly once) and canceled; FX at the rate shown at open; exactly-once
answers under repeats, races and crashes; refusals naming the field; back-office scope.
"""
# long-module: the scenarios of one service, sharing its fixtures; split by topic would repeat them

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from branchline.common.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from branchline.common.txref import TxReference
from branchline.server.ledger.lookup import lookup_transaction
from branchline.server.ledger.schema import holds
from branchline.server.tube import model as m
from branchline.server.tube.schema import tube_incidents, tube_transactions
from branchline.server.tube.service import TubeService
from branchline.v1 import tube_pb2 as pb
from tests.unit import tube_support
from tests.unit.tube_support import (
    BO,
    BO2,
    DEPOSIT,
    PAN_MASKED,
    PLAIN_TELLER,
    SESSIONS,
    WITHDRAWAL,
    World,
    bill,
    cash,
    metal,
    token,
    tube_event,
    tube_open,
)

world = tube_support.world

S = pb.TubeState


def ok(reply: pb.TubeReply) -> pb.TubeTransaction:
    assert reply.code == "", f"{reply.code}: {reply.message}"
    return reply.txn


def refused(reply: pb.TubeReply, code: str, field: str = "") -> pb.TubeReply:
    assert reply.code == code, f"{reply.code}: {reply.message}"
    if field:
        assert reply.message.startswith(field), reply.message
        # The field travels as data too (the path, without the message's words).
        assert reply.field == field.split(":")[0], reply
    return reply


def entries_of(w: World, txn: str, terminal: str = "K-1") -> list[Any]:
    return list(lookup_transaction(w.engine, TxReference(terminal, txn)).entries)


def ev(w: World, txn: str, kind: int, request: str, terminal: str = "K-1", **kw: Any) -> Any:
    return w.svc.handle_event(terminal, tube_event(txn, kind, request, **kw), w.clock())


def balance(w: World, account: str, customer: str = "c1") -> tuple[Decimal, Decimal]:
    found = next(a for a in w.ledger.balances(customer) if a.account_id == account)
    return found.balance, found.available


# -- deposits -------------------------------------------------------------------------------


def test_cash_deposit_counted_confirmed_and_posted_once(world: World) -> None:
    w = world
    txn = ok(w.svc.handle_open("K-1", tube_open(DEPOSIT, w.books.cash, cash("500"), "D1")))
    assert (txn.state, txn.kind, txn.branch, txn.customer_id) == (
        S.Value("TUBE_STATE_OPEN"),
        DEPOSIT,
        "BR-1",
        "c1",
    )
    assert (txn.requested.amount, txn.requested.currency) == ("500.00", "CNY")
    assert (txn.quote.rate_version, txn.quote.rate, txn.quote.account_amount) == (0, "1", "500.00")
    assert txn.pan_masked == PAN_MASKED and txn.updated_by == "terminal:K-1"
    assert entries_of(w, "D1") == []  # nothing moves before the count
    w.clock.advance(30)
    sent = ok(ev(w, "D1", pb.TUBE_EVENT_CARRIER_SENT, "K-1:2", carrier_id=17))
    assert (sent.state, sent.carrier_id) == (pb.TUBE_STATE_IN_TRANSIT, 17)
    w.clock.advance(60)
    got = w.svc.receive_carrier(BO, "D1", 17)
    assert got.state == pb.TUBE_STATE_RECEIVED and got.updated_by == "teller:BO-1"
    counted = w.svc.enter_count(BO, "D1", cash("490"), note="one 10 note is a fake")
    assert counted.state == pb.TUBE_STATE_COUNTED
    assert (counted.counted.amount, counted.quote.account_amount) == ("490.00", "490.00")
    assert counted.note == "one 10 note is a fake"
    # The back office's changes were told to the listener (the terminal's push).
    assert [t.state for t in w.pushed][-2:] == [pb.TUBE_STATE_RECEIVED, pb.TUBE_STATE_COUNTED]
    posted = ok(ev(w, "D1", pb.TUBE_EVENT_CONFIRM, "K-1:3", customer_confirmed=True))
    assert posted.state == pb.TUBE_STATE_POSTED and posted.entry_id > 0
    assert (posted.balance_after, posted.available_after) == ("1490.00", "1490.00")
    entries = entries_of(w, "D1")
    assert [(e.entry_id, e.reference.request_id) for e in entries] == [
        (posted.entry_id, "D1:deposit")
    ]
    assert balance(w, w.books.cash) == (Decimal("1490.00"), Decimal("1490.00"))
    # A recovering terminal confirming again under a new key: the record, nothing posted.
    again = ok(ev(w, "D1", pb.TUBE_EVENT_CONFIRM, "K-1:99"))
    assert again == posted and len(entries_of(w, "D1")) == 1
    events = [e.event for e in w.svc.history(BO, "D1")]
    assert events == ["open", "carrier_sent", "received", "counted", "posted"]


def test_metal_deposit_in_grams(world: World) -> None:
    w = world
    txn = ok(w.svc.handle_open("K-1", tube_open(DEPOSIT, w.books.metal, metal("12.345"), "M1")))
    assert (txn.requested.kind, txn.requested.amount) == (pb.ASSET_KIND_METAL, "12.345")
    ok(ev(w, "M1", pb.TUBE_EVENT_CARRIER_SENT, "m2", carrier_id=3))
    with pytest.raises(InvalidArgument, match=r"^counted\.kind: the customer deposited metal"):
        w.svc.enter_count(BO, "M1", cash("12.34"))
    with pytest.raises(InvalidArgument, match=r"^counted\.currency: .*declared XAU") as mism:
        w.svc.enter_count(BO, "M1", metal("12.340", "XAG"))
    assert mism.value.code == "currency_mismatch"
    with pytest.raises(InvalidArgument, match=r"^counted\.amount") as decimals:
        w.svc.enter_count(BO, "M1", metal("12.3401"))
    assert decimals.value.code == "too_many_decimals"
    counted = w.svc.enter_count(BO, "M1", metal("12.340"))  # straight from in_transit
    assert counted.counted.amount == "12.340"
    posted = ok(ev(w, "M1", pb.TUBE_EVENT_CONFIRM, "m3", customer_confirmed=True))
    assert posted.balance_after == "62.340"
    assert balance(w, w.books.metal)[0] == Decimal("62.340")


def test_bill_deposit_then_withdrawal_of_that_bill(world: World) -> None:
    w = world
    declared = bill("250000.00", "BA-2026-0001", "bank_acceptance", "2026-09-30")
    txn = ok(w.svc.handle_open("K-1", tube_open(DEPOSIT, w.books.bills, declared, "B1")))
    assert txn.requested.bill.bill_id == "BA-2026-0001"
    ok(ev(w, "B1", pb.TUBE_EVENT_CARRIER_SENT, "b2", carrier_id=9))
    w.svc.receive_carrier(BO, "B1", 9)
    with pytest.raises(
        InvalidArgument,
        match=r"^counted\.bill\.maturity: must not be empty|^counted\.bill\.maturity",
    ):
        w.svc.enter_count(BO, "B1", bill("250000.00", "BA-2026-0001", "bank_acceptance"))
    with pytest.raises(InvalidArgument) as matured:
        w.svc.enter_count(
            BO, "B1", bill("250000.00", "BA-2026-0001", "bank_acceptance", "2026-01-01")
        )
    assert matured.value.code == "bill_matured"
    counted = w.svc.enter_count(
        BO, "B1", bill("250000.00", "BA-2026-0001", "bank_acceptance", "2026-09-30")
    )
    assert counted.counted.bill.maturity == "2026-09-30"
    posted = ok(ev(w, "B1", pb.TUBE_EVENT_CONFIRM, "b3", customer_confirmed=True))
    assert posted.balance_after == "250000.00"
    held = w.ledger.bills("c1")
    assert [(b.bill_id, b.status) for b in held] == [("BA-2026-0001", "held")]
    # The same bill comes out again through the tube.
    out = ok(
        w.svc.handle_open(
            "K-1", tube_open(WITHDRAWAL, w.books.bills, bill("250000.00", "BA-2026-0001"), "B2")
        )
    )
    assert out.hold_id and out.available_after == "0.00"
    w.svc.send_carrier(BO, "B2", 44)
    ok(ev(w, "B2", pb.TUBE_EVENT_CARRIER_TAKEN, "b5"))
    ok(ev(w, "B2", pb.TUBE_EVENT_CONFIRM, "b6", customer_confirmed=True))
    assert w.ledger.bills("c1") == []  # no longer held for the customer
    assert balance(w, w.books.bills) == (Decimal("0.00"), Decimal("0.00"))


def test_disputes_return_the_carrier_or_call_a_teller(world: World) -> None:
    w = world
    for txn in ("R1", "R2"):
        ok(w.svc.handle_open("K-1", tube_open(DEPOSIT, w.books.cash, cash("100"), txn)))
        ok(ev(w, txn, pb.TUBE_EVENT_CARRIER_SENT, f"{txn}-s", carrier_id=5))
        w.svc.enter_count(BO, txn, cash("90"))
    bare = ev(w, "R1", pb.TUBE_EVENT_DISPUTE, "R1-d0")
    refused(bare, "invalid_argument", "tube_event.reason")
    unknown = ev(w, "R1", pb.TUBE_EVENT_DISPUTE, "R1-d1", reason="angry")
    assert "dispute_return (the carrier back) or dispute_teller" in unknown.message
    disputed = ok(ev(w, "R1", pb.TUBE_EVENT_DISPUTE, "R1-d", reason="dispute_return"))
    assert disputed.state == pb.TUBE_STATE_DISPUTED and disputed.reason == "dispute_return"
    refused(ev(w, "R1", pb.TUBE_EVENT_CONFIRM, "R1-c"), "wrong_state", "tube_event.kind: confirm")
    back = w.svc.send_carrier(BO, "R1", 6)
    assert (back.state, back.carrier_id) == (pb.TUBE_STATE_RETURNING, 6)
    ok(ev(w, "R1", pb.TUBE_EVENT_CARRIER_ARRIVED, "R1-a", carrier_id=6))
    returned = ok(ev(w, "R1", pb.TUBE_EVENT_CARRIER_TAKEN, "R1-t"))
    assert returned.state == pb.TUBE_STATE_RETURNED and entries_of(w, "R1") == []
    teller = ok(ev(w, "R2", pb.TUBE_EVENT_DISPUTE, "R2-d", reason="dispute_teller"))
    assert teller.state == pb.TUBE_STATE_HANDED_TO_TELLER and teller.incident_id
    incidents = w.svc.list_incidents(BO)
    assert [(i.incident_id, i.kind, i.txn_id) for i in incidents] == [
        (teller.incident_id, "dispute", "R2")
    ]
    assert "asked for a teller" in incidents[0].detail


def test_deposit_cancel_and_handover(world: World) -> None:
    w = world
    ok(w.svc.handle_open("K-1", tube_open(DEPOSIT, w.books.cash, cash("100"), "C1")))
    canceled = ok(ev(w, "C1", pb.TUBE_EVENT_CANCEL, "c-1", reason="customer_canceled"))
    assert canceled.state == pb.TUBE_STATE_CANCELED and not canceled.incident_id
    ok(w.svc.handle_open("K-1", tube_open(DEPOSIT, w.books.cash, cash("100"), "C2")))
    ok(ev(w, "C2", pb.TUBE_EVENT_CARRIER_SENT, "c-2", carrier_id=8))
    refused(ev(w, "C2", pb.TUBE_EVENT_CANCEL, "c-3"), "wrong_state", "tube_event.kind: cancel")
    refused(ev(w, "C2", pb.TUBE_EVENT_REVERSE, "c-4", reason="lost"), "wrong_kind")
    refused(ev(w, "C2", pb.TUBE_EVENT_HANDOVER, "c-5"), "invalid_argument", "tube_event.reason")
    lost = ok(
        ev(w, "C2", pb.TUBE_EVENT_HANDOVER, "c-6", reason="carrier_lost", detail="no arrival")
    )
    assert lost.state == pb.TUBE_STATE_HANDED_TO_TELLER and lost.reason == "carrier_lost"
    (incident,) = w.svc.list_incidents(BO)
    assert (incident.kind, incident.incident_id) == ("carrier_lost", lost.incident_id)
    assert "no arrival" in incident.detail


# -- withdrawals ----------------------------------------------------------------------------


def test_withdrawal_delivered_and_confirmed_without_the_customer(world: World) -> None:
    w = world
    txn = ok(w.svc.handle_open("K-1", tube_open(WITHDRAWAL, w.books.cash, cash("200"), "W1")))
    assert txn.state == pb.TUBE_STATE_OPEN and txn.hold_id
    assert (txn.balance_after, txn.available_after) == ("1000.00", "800.00")
    assert balance(w, w.books.cash) == (Decimal("1000.00"), Decimal("800.00"))
    refused(ev(w, "W1", pb.TUBE_EVENT_CONFIRM, "w-0"), "wrong_state")
    sent = w.svc.send_carrier(BO, "W1", 21)
    assert (sent.state, sent.carrier_id) == (pb.TUBE_STATE_DISPATCHED, 21)
    arrived = ok(ev(w, "W1", pb.TUBE_EVENT_CARRIER_ARRIVED, "w-1", carrier_id=22))
    assert arrived.state == pb.TUBE_STATE_DISPATCHED and arrived.incident_id  # wrong carrier
    ok(ev(w, "W1", pb.TUBE_EVENT_CARRIER_ARRIVED, "w-1b", carrier_id=22))  # reported again
    (incident,) = w.svc.list_incidents(BO)
    assert incident.kind == "wrong_carrier" and "but carrier 21 was sent" in incident.detail
    taken = ok(ev(w, "W1", pb.TUBE_EVENT_CARRIER_TAKEN, "w-2"))
    assert taken.state == pb.TUBE_STATE_DELIVERED
    refused(ev(w, "W1", pb.TUBE_EVENT_REVERSE, "w-3", reason="lost"), "wrong_state")
    assert (
        "the customer has the goods"
        in ev(w, "W1", pb.TUBE_EVENT_REVERSE, "w-4", reason="x").message
    )
    posted = ok(ev(w, "W1", pb.TUBE_EVENT_CONFIRM, "w-5", customer_confirmed=False))
    assert posted.state == pb.TUBE_STATE_POSTED
    assert posted.note == "taken, receipt not confirmed by the customer"
    assert (posted.balance_after, posted.available_after) == ("800.00", "800.00")
    assert [e.reference.request_id for e in entries_of(w, "W1")] == ["W1:capture"]


def test_confirm_straight_from_dispatched(world: World) -> None:
    w = world
    ok(w.svc.handle_open("K-1", tube_open(WITHDRAWAL, w.books.metal, metal("2.500"), "W2")))
    w.svc.send_carrier(BO, "W2", 1)
    posted = ok(ev(w, "W2", pb.TUBE_EVENT_CONFIRM, "w2-c", customer_confirmed=True))
    assert posted.state == pb.TUBE_STATE_POSTED and posted.note == ""
    assert balance(w, w.books.metal)[0] == Decimal("47.500")


def test_reverse_releases_the_hold_exactly_once(world: World) -> None:
    w = world
    ok(w.svc.handle_open("K-1", tube_open(WITHDRAWAL, w.books.cash, cash("300"), "V1")))
    w.svc.send_carrier(BO, "V1", 30)
    refused(ev(w, "V1", pb.TUBE_EVENT_REVERSE, "v-0"), "invalid_argument", "tube_event.reason")
    reversed_ = ok(ev(w, "V1", pb.TUBE_EVENT_REVERSE, "v-1", reason="jammed"))
    assert reversed_.state == pb.TUBE_STATE_REVERSED and reversed_.incident_id
    assert balance(w, w.books.cash) == (Decimal("1000.00"), Decimal("1000.00"))
    again = ok(ev(w, "V1", pb.TUBE_EVENT_REVERSE, "v-2", reason="jammed"))
    assert again == reversed_
    with w.engine.connect() as conn:
        statuses = conn.execute(select(holds.c.status, holds.c.reason)).all()
        incidents = conn.execute(select(func.count()).select_from(tube_incidents)).scalar()
    assert [tuple(s) for s in statuses] == [("released", "tube reverse: jammed")]
    assert incidents == 1 and entries_of(w, "V1") == []
    # Never dispatched: delivery_timeout reverses from open, with an incident too.
    ok(w.svc.handle_open("K-1", tube_open(WITHDRAWAL, w.books.cash, cash("10"), "V2")))
    timed_out = ok(ev(w, "V2", pb.TUBE_EVENT_REVERSE, "v-3", reason="delivery_timeout"))
    assert timed_out.state == pb.TUBE_STATE_REVERSED and timed_out.incident_id
    assert w.svc.list_incidents(BO)[-1].kind == "delivery_timeout"


def test_cancel_releases_the_hold_without_an_incident(world: World) -> None:
    w = world
    ok(w.svc.handle_open("K-1", tube_open(WITHDRAWAL, w.books.cash, cash("300"), "X1")))
    canceled = ok(ev(w, "X1", pb.TUBE_EVENT_CANCEL, "x-1", reason="customer_canceled"))
    assert canceled.state == pb.TUBE_STATE_CANCELED and not canceled.incident_id
    assert canceled.available_after == "1000.00"
    assert w.svc.list_incidents(BO) == []
    with pytest.raises(FailedPrecondition, match="SendCarrier is not possible .* canceled"):
        w.svc.send_carrier(BO, "X1", 3)
    ok(w.svc.handle_open("K-1", tube_open(WITHDRAWAL, w.books.cash, cash("5"), "X2")))
    w.svc.send_carrier(BO, "X2", 4)
    refused(ev(w, "X2", pb.TUBE_EVENT_CANCEL, "x-2"), "wrong_state")
    handed = ok(ev(w, "X2", pb.TUBE_EVENT_HANDOVER, "x-3", reason="recovery"))
    assert handed.state == pb.TUBE_STATE_HANDED_TO_TELLER
    assert balance(w, w.books.cash)[1] == Decimal("995.00")  # the hold stays for the teller


# -- FX: the rate shown at open is the rate posted --------------------------------------------


def test_fx_deposit_posts_at_the_rate_of_the_open(world: World) -> None:
    w = world
    v1 = w.ledger.set_rates({"USD": ("7.10", "7.20")}, "feed", w.clock()).version_id
    refused(
        w.svc.handle_open("K-1", tube_open(DEPOSIT, w.books.cash, cash("100", "USD"), "F0")),
        "rate_version_required",
        "tube_open.rate_version",
    )
    txn = ok(
        w.svc.handle_open(
            "K-1", tube_open(DEPOSIT, w.books.cash, cash("100", "USD"), "F1", rate_version=v1)
        )
    )
    assert (txn.quote.rate_version, txn.quote.rate, txn.quote.account_amount) == (
        v1,
        "7.1",
        "710.00",
    )
    assert txn.quote.account_currency == "CNY"
    w.clock.advance(120)
    w.ledger.set_rates({"USD": ("6.50", "6.60")}, "feed", w.clock())
    ok(ev(w, "F1", pb.TUBE_EVENT_CARRIER_SENT, "f-1", carrier_id=2))
    w.clock.advance(40 * 60)  # far past rate_validity after the change
    counted = w.svc.enter_count(BO, "F1", cash("90", "USD"))
    assert (counted.quote.rate_version, counted.quote.account_amount) == (v1, "639.00")
    posted = ok(ev(w, "F1", pb.TUBE_EVENT_CONFIRM, "f-2", customer_confirmed=True))
    (entry,) = entries_of(w, "F1")
    assert entry.rate_version == v1 and entry.leg(w.books.cash).amount == Decimal("639.00")
    assert posted.balance_after == "1639.00"


def test_fx_withdrawal_debits_what_was_shown(world: World) -> None:
    w = world
    v1 = w.ledger.set_rates({"USD": ("7.10", "7.20")}, "feed", w.clock()).version_id
    txn = ok(
        w.svc.handle_open(
            "K-1", tube_open(WITHDRAWAL, w.books.cash, cash("100", "USD"), "F2", rate_version=v1)
        )
    )
    assert (txn.quote.rate, txn.quote.account_amount, txn.available_after) == (
        "7.2",
        "720.00",
        "280.00",
    )
    w.clock.advance(300)
    w.ledger.set_rates({"USD": ("7.50", "7.90")}, "feed", w.clock())
    w.clock.advance(20 * 60)  # past rate_validity, within the hold's 30 minutes
    w.svc.send_carrier(BO, "F2", 7)
    ok(ev(w, "F2", pb.TUBE_EVENT_CARRIER_TAKEN, "f2-t"))
    ok(ev(w, "F2", pb.TUBE_EVENT_CONFIRM, "f2-c", customer_confirmed=True))
    (entry,) = entries_of(w, "F2")
    assert entry.rate_version == v1 and entry.leg(w.books.cash).amount == Decimal("-720.00")


# -- exactly once -----------------------------------------------------------------------------


def test_a_repeated_request_gets_the_very_same_bytes(world: World) -> None:
    w = world
    message = tube_open(WITHDRAWAL, w.books.cash, cash("5000"), "E1", request="K-1:7")
    first = w.svc.handle_open("K-1", message)
    refused(first, "insufficient_funds", "tube_open.asset.amount: amount over balance")
    # Even once the money is there, the first answer stands for that request.
    w.clock.advance(5)
    assert w.svc.handle_open("K-1", message).SerializeToString() == first.SerializeToString()
    opened = w.svc.handle_open("K-1", tube_open(DEPOSIT, w.books.cash, cash("10"), "E2", "K-1:8"))
    again = w.svc.handle_open("K-1", tube_open(DEPOSIT, w.books.cash, cash("10"), "E2", "K-1:8"))
    assert again.SerializeToString() == opened.SerializeToString()
    ok(ev(w, "E2", pb.TUBE_EVENT_CARRIER_SENT, "K-1:9", carrier_id=1))
    w.svc.enter_count(BO, "E2", cash("10"))
    confirm = tube_event("E2", pb.TUBE_EVENT_CONFIRM, "K-1:10")
    one = w.svc.handle_event("K-1", confirm)
    w.clock.advance(5)
    two = w.svc.handle_event("K-1", confirm)
    assert one.SerializeToString() == two.SerializeToString() and len(entries_of(w, "E2")) == 1
    # A key answers only the kind of message it was first used for.
    reused = w.svc.handle_event("K-1", tube_event("E2", pb.TUBE_EVENT_CONFIRM, "K-1:8"))
    refused(reused, "request_id_reused", "tube_event.request_id")
    with w.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(tube_transactions)).scalar() == 1


def _race(actions: list[Any]) -> list[Any]:
    barrier = threading.Barrier(len(actions))
    results: list[Any] = [None] * len(actions)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = actions[i]()
        except BaseException as exc:  # noqa: BLE001 - reported below
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(actions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_concurrent_confirms_under_different_keys_post_once(world: World) -> None:
    w = world
    ok(w.svc.handle_open("K-1", tube_open(DEPOSIT, w.books.cash, cash("100"), "P1")))
    ok(ev(w, "P1", pb.TUBE_EVENT_CARRIER_SENT, "p-s", carrier_id=1))
    w.svc.enter_count(BO, "P1", cash("100"))
    replies = _race(
        [
            lambda i=i: w.svc.handle_event(
                "K-1", tube_event("P1", pb.TUBE_EVENT_CONFIRM, f"p-{i}"), w.clock()
            )
            for i in range(6)
        ]
    )
    assert all(
        isinstance(r, pb.TubeReply) and r.txn.state == pb.TUBE_STATE_POSTED for r in replies
    ), replies
    assert len({r.txn.entry_id for r in replies}) == 1
    assert len(entries_of(w, "P1")) == 1
    assert balance(w, w.books.cash)[0] == Decimal("1100.00")
    # Racing reversals of a withdrawal: one release.
    ok(w.svc.handle_open("K-1", tube_open(WITHDRAWAL, w.books.cash, cash("100"), "P2")))
    replies = _race(
        [
            lambda i=i: w.svc.handle_event(
                "K-1", tube_event("P2", pb.TUBE_EVENT_REVERSE, f"q-{i}", reason="not_taken")
            )
            for i in range(6)
        ]
    )
    assert all(r.txn.state == pb.TUBE_STATE_REVERSED for r in replies), replies
    with w.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(tube_incidents)).scalar() == 1


def test_a_crash_between_ledger_and_record_completes_on_the_retry(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = world
    ok(w.svc.handle_open("K-1", tube_open(WITHDRAWAL, w.books.cash, cash("50"), "K1")))
    w.svc.send_carrier(BO, "K1", 2)
    real = TubeService._apply

    def crash(*args: Any, **kw: Any) -> Any:
        raise RuntimeError("power cut")

    monkeypatch.setattr(TubeService, "_apply", crash)
    confirm = tube_event("K1", pb.TUBE_EVENT_CONFIRM, "k-1", customer_confirmed=True)
    with pytest.raises(RuntimeError, match="power cut"):
        w.svc.handle_event("K-1", confirm)
    assert len(entries_of(w, "K1")) == 1  # the capture happened, the record did not move
    assert w.svc.get_transaction(BO, "K1").state == pb.TUBE_STATE_DISPATCHED
    # Meanwhile nothing else may change it.
    refused(ev(w, "K1", pb.TUBE_EVENT_REVERSE, "k-2", reason="lost"), "wrong_state")
    monkeypatch.setattr(TubeService, "_apply", real)
    done = ok(w.svc.handle_event("K-1", confirm))
    assert done.state == pb.TUBE_STATE_POSTED and len(entries_of(w, "K1")) == 1
    assert done.entry_id == entries_of(w, "K1")[0].entry_id


# -- refusals name the field --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"asset": cash("-5")}, "negative_amount", "tube_open.asset.amount"),
        ({"asset": cash("0")}, "zero_amount", "tube_open.asset.amount"),
        ({"asset": cash("99999999999")}, "amount_over_limit", "tube_open.asset.amount"),
        ({"asset": cash("1.234")}, "too_many_decimals", "tube_open.asset.amount"),
        ({"asset": cash("12,50")}, "invalid_amount", "tube_open.asset.amount"),
        ({"asset": cash("10", "ZZZ")}, "unknown_currency", "tube_open.asset.currency"),
        ({"asset": cash("10", "XAU")}, "invalid_argument", "tube_open.asset.currency"),
        ({"asset": metal("1.000")}, "invalid_argument", "tube_open.asset.kind"),
        (
            {"asset": pb.TubeAsset(currency="CNY", amount="1")},
            "invalid_argument",
            "tube_open.asset.kind",
        ),
        ({"asset": cash("5000")}, "insufficient_funds", "tube_open.asset.amount"),
        ({"account_id": "B-CNY"}, "not_your_account", "tube_open.account_id"),
        ({"account_id": "NOPE"}, "not_your_account", "tube_open.account_id"),
        ({"account_id": ""}, "invalid_argument", "tube_open.account_id"),
        ({"account_id": "A" * 5000}, "too_long", "tube_open.account_id"),
        ({"txn_id": ""}, "invalid_argument", "tube_open.txn_id"),
        ({"txn_id": "has space"}, "invalid_argument", "tube_open.txn_id"),
        ({"txn_id": "x" * 65}, "invalid_argument", "tube_open.txn_id"),
        ({"kind": 0}, "invalid_argument", "tube_open.kind"),
        ({"kind": 7}, "invalid_argument", "tube_open.kind"),
        ({"session_token": ""}, "session_required", "tube_open.session_token"),
        ({"session_token": "abc.def"}, "session_invalid", "tube_open.session_token"),
        ({"request_id": ""}, "invalid_argument", "tube_open.request_id"),
    ],
)
def test_bad_opens_are_refused_naming_the_field(
    world: World, change: dict[str, Any], code: str, field: str
) -> None:
    w = world
    message = tube_open(WITHDRAWAL, w.books.cash, cash("100"), "BAD-1")
    for key, value in change.items():
        if isinstance(value, pb.TubeAsset):
            message.asset.CopyFrom(value)
        else:
            setattr(message, key, value)
    reply = refused(w.svc.handle_open("K-1", message), code, field)
    assert not reply.HasField("txn")
    assert len(reply.message) < 300, reply.message  # no caller input echoed back whole
    with w.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(tube_transactions)).scalar() == 0
        assert conn.execute(select(func.count()).select_from(holds)).scalar() == 0


def test_sessions_are_checked(world: World) -> None:
    w = world
    expired = token(at=w.clock() - timedelta(minutes=11))
    refused(
        w.svc.handle_open(
            "K-1", tube_open(DEPOSIT, w.books.cash, cash("1"), "S1", session=expired)
        ),
        "session_expired",
        "tube_open.session_token",
    )
    other = token(terminal="K-2")
    refused(
        w.svc.handle_open("K-1", tube_open(DEPOSIT, w.books.cash, cash("1"), "S2", session=other)),
        "session_other_terminal",
    )
    bare = TubeService(w.engine, w.ledger, None, clock=w.clock)
    refused(
        bare.handle_open("K-1", tube_open(DEPOSIT, w.books.cash, cash("1"), "S3")),
        "sessions_unavailable",
        "tube_open.session_token",
    )


def test_txn_ids_are_the_terminals_own(world: World) -> None:
    w = world
    first = ok(w.svc.handle_open("K-1", tube_open(DEPOSIT, w.books.cash, cash("10"), "U1")))
    # The same open again under a new key (a recovering terminal): the record.
    same = ok(
        w.svc.handle_open("K-1", tube_open(DEPOSIT, w.books.cash, cash("10.00"), "U1", "u-2"))
    )
    assert same == first
    refused(
        w.svc.handle_open("K-1", tube_open(DEPOSIT, w.books.cash, cash("11"), "U1", "u-3")),
        "txn_id_reused",
        "tube_open.txn_id",
    )
    other = SESSIONS.issue("K-2", "card-token-c1", "c1", w.clock())
    reused = w.svc.handle_open(
        "K-2", tube_open(DEPOSIT, w.books.cash, cash("10"), "U1", "u-4", session=other)
    )
    refused(reused, "txn_id_reused", "tube_open.txn_id")
    assert "K-1" not in reused.message
    for reply in (
        ev(w, "U1", pb.TUBE_EVENT_CANCEL, "u-5", terminal="K-2"),
        w.svc.query("K-2", "U1"),
    ):
        refused(reply, "not_found")
        assert not reply.HasField("txn") and "K-1" not in reply.message
    assert [t.txn_id for t in w.svc.query("K-1").txns] == ["U1"]
    assert w.svc.query("K-2").txns == []
    assert w.svc.query("K-1", "U1").txn == first


@pytest.mark.parametrize(
    ("event", "code", "field"),
    [
        (tube_event("Q1", 0, "e1"), "invalid_argument", "tube_event.kind"),
        (tube_event("Q1", 42, "e2"), "invalid_argument", "tube_event.kind"),
        (
            tube_event("Q1", pb.TUBE_EVENT_CARRIER_SENT, "e3"),
            "invalid_argument",
            "tube_event.carrier_id",
        ),
        (tube_event("", pb.TUBE_EVENT_CANCEL, "e4"), "invalid_argument", "tube_event.txn_id"),
        (tube_event("Q9", pb.TUBE_EVENT_CANCEL, "e5"), "not_found", "tube_event.txn_id"),
        (tube_event("Q1", pb.TUBE_EVENT_CANCEL, ""), "invalid_argument", "tube_event.request_id"),
        (tube_event("Q1", pb.TUBE_EVENT_CONFIRM, "e6"), "wrong_state", "tube_event.kind: confirm"),
        (
            tube_event("Q1", pb.TUBE_EVENT_HANDOVER, "e7", reason="Bad Reason"),
            "invalid_argument",
            "tube_event.reason",
        ),
        (
            tube_event("Q1", pb.TUBE_EVENT_CANCEL, "e8", detail="x" * 501),
            "invalid_argument",
            "tube_event.detail",
        ),
    ],
)
def test_bad_events_are_refused_naming_the_field(
    world: World, event: pb.TubeEvent, code: str, field: str
) -> None:
    w = world
    ok(w.svc.handle_open("K-1", tube_open(DEPOSIT, w.books.cash, cash("10"), "Q1")))
    reply = refused(w.svc.handle_event("K-1", event), code, field)
    if code == "wrong_state":
        assert reply.txn.state == pb.TUBE_STATE_OPEN and "in state open" in reply.message
    assert w.svc.query("K-1", "Q1").txn.state == pb.TUBE_STATE_OPEN


def test_card_numbers_in_free_text_are_masked(world: World) -> None:
    w = world
    ok(w.svc.handle_open("K-1", tube_open(DEPOSIT, w.books.cash, cash("10"), "PAN1")))
    handed = ok(
        ev(
            w,
            "PAN1",
            pb.TUBE_EVENT_HANDOVER,
            "pan-1",
            reason="walked_away",
            detail="card 4761739001010010 left",
        )
    )
    (incident,) = w.svc.list_incidents(BO)
    assert "4761739001010010" not in incident.detail and "476173" in incident.detail
    assert handed.state == pb.TUBE_STATE_HANDED_TO_TELLER


# -- the back office ----------------------------------------------------------------------------


def test_back_office_scope_names_the_rule(world: World) -> None:
    w = world
    ok(w.svc.handle_open("K-1", tube_open(DEPOSIT, w.books.cash, cash("10"), "G1")))
    ok(ev(w, "G1", pb.TUBE_EVENT_CARRIER_SENT, "g-1", carrier_id=4))
    with pytest.raises(
        PermissionDenied, match="TubeDesk is for tellers with the back_office skill; teller T-9"
    ):
        w.svc.list_transactions(PLAIN_TELLER)
    with pytest.raises(PermissionDenied, match="teller T-9 does not have it"):
        w.svc.enter_count(PLAIN_TELLER, "G1", cash("-1"))  # who is checked before what
    with pytest.raises(PermissionDenied, match="is not on the staff records"):
        w.svc.get_transaction(tube_support.Principal("teller", "GHOST"), "G1")
    with pytest.raises(PermissionDenied, match="the caller is lobby L1"):
        w.svc.list_incidents(tube_support.Principal("lobby", "L1"))
    with pytest.raises(
        PermissionDenied,
        match="tube transactions of branch BR-1 are handled by its own back office; teller BO-2 is of BR-2",
    ):
        w.svc.receive_carrier(BO2, "G1", 4)
    assert w.svc.list_transactions(BO2) == []
    with pytest.raises(NotFound, match="txn_id: no tube transaction 'G9'"):
        w.svc.get_transaction(BO, "G9")
    with pytest.raises(
        InvalidArgument, match="carrier_id: transaction G1 was sent in carrier 4, not 5"
    ):
        w.svc.receive_carrier(BO, "G1", 5)
    with pytest.raises(InvalidArgument, match="carrier_id: the carrier's number is required"):
        w.svc.receive_carrier(BO, "G1", 0)
    with pytest.raises(
        FailedPrecondition, match="SendCarrier is not possible for deposit G1 in state in_transit"
    ):
        w.svc.send_carrier(BO, "G1", 4)
    first = w.svc.receive_carrier(BO, "G1", 4)
    assert w.svc.receive_carrier(BO, "G1", 4) == first  # the clerk's retry changes nothing
    with pytest.raises(InvalidArgument, match="states\\[0\\]: unknown state"):
        w.svc.list_transactions(BO, ["bogus"])
    assert [t.txn_id for t in w.svc.list_transactions(BO)] == ["G1"]
    assert w.svc.list_transactions(BO, [m.POSTED]) == []


def test_a_hold_that_expired_is_not_sent(world: World) -> None:
    w = world
    ok(w.svc.handle_open("K-1", tube_open(WITHDRAWAL, w.books.cash, cash("10"), "H1")))
    w.clock.advance(31 * 60)
    with pytest.raises(FailedPrecondition, match="its hold is no longer active") as late:
        w.svc.send_carrier(BO, "H1", 1)
    assert late.value.code == "hold_expired"
    reversed_ = ok(ev(w, "H1", pb.TUBE_EVENT_REVERSE, "h-1", reason="delivery_timeout"))
    assert reversed_.state == pb.TUBE_STATE_REVERSED


def test_incidents_are_listed_and_resolved_once(world: World) -> None:
    w = world
    ok(w.svc.handle_open("K-1", tube_open(DEPOSIT, w.books.cash, cash("10"), "I1")))
    handed = ok(ev(w, "I1", pb.TUBE_EVENT_HANDOVER, "i-1", reason="walked_away"))
    with pytest.raises(InvalidArgument, match="^resolution: must not be empty"):
        w.svc.resolve_incident(BO, handed.incident_id, "  ")
    with pytest.raises(InvalidArgument, match="^resolution: longer than 500"):
        w.svc.resolve_incident(BO, handed.incident_id, "x" * 501)
    with pytest.raises(PermissionDenied, match="incidents of branch BR-1"):
        w.svc.resolve_incident(BO2, handed.incident_id, "not mine")
    done = w.svc.resolve_incident(BO, handed.incident_id, "customer called back, carrier returned")
    assert done.resolved_by == "teller:BO-1" and done.resolution.startswith("customer called")
    with pytest.raises(FailedPrecondition, match="was resolved by teller:BO-1"):
        w.svc.resolve_incident(BO, handed.incident_id, "again")
    assert w.svc.list_incidents(BO) == []
    assert [i.incident_id for i in w.svc.list_incidents(BO, include_resolved=True)] == [
        handed.incident_id
    ]
    assert w.svc.history(BO, "I1")[-1].event == "incident_resolved"


def test_the_stale_sweep_opens_one_incident_per_silence(world: World) -> None:
    w = world
    ok(w.svc.handle_open("K-1", tube_open(DEPOSIT, w.books.cash, cash("10"), "Z1")))
    ok(w.svc.handle_open("K-1", tube_open(DEPOSIT, w.books.cash, cash("10"), "Z2")))
    ok(ev(w, "Z2", pb.TUBE_EVENT_CANCEL, "z-0"))
    w.clock.advance(29 * 60)
    assert w.svc.sweep_stale() == []
    w.clock.advance(2 * 60)
    (first,) = w.svc.sweep_stale()
    assert w.svc.sweep_stale() == []
    (incident,) = w.svc.list_incidents(BO)
    assert (incident.incident_id, incident.kind, incident.txn_id) == (first, "stale", "Z1")
    assert "open for 31 min" in incident.detail
    w.svc.resolve_incident(BO, first, "terminal replaced; customer refunded nothing owed")
    assert w.svc.sweep_stale() == []  # resolved and still silent: no new one
    ok(ev(w, "Z1", pb.TUBE_EVENT_CARRIER_SENT, "z-1", carrier_id=3))
    w.clock.advance(31 * 60)
    (second,) = w.svc.sweep_stale()
    assert second != first
