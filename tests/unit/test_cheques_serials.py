"""Linkage processing on SQLite and PostgreSQL: serials allocated and the fee posted exactly
once under retries, every serial in exactly one state (the database refuses two), the fee
refunded per book on faults."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import IntegrityError

from branchline.server.cheques.schema import cheque_incidents, cheque_leaves, cheque_stock_ranges
from branchline.server.cheques.settle import sweep_stale
from branchline.server.ledger.accounts import get_account
from branchline.server.ledger.schema import journal_entries
from branchline.v1 import cheques_pb2 as pb
from tests.unit.cheque_support import BASIC, T0, World, make_world

P = pb.LEAF_OUTCOME_PRINTED
FEE = Decimal("15.00")


@pytest.fixture
def world(engine: Engine) -> Iterator[World]:
    yield make_world(engine)


def balance(world: World) -> Decimal:
    account = get_account(world.engine, BASIC.account_id)
    assert account is not None
    return account.balance


def numbers(reply: pb.ChequeReply) -> list[str]:
    return [leaf.number for book in reply.purchase.books for leaf in book.leaves]


def report(nums: list[str], outcome: pb.LeafOutcome, reason: str = "") -> list[pb.LeafReport]:
    return [pb.LeafReport(number=n, outcome=outcome, void_reason=reason) for n in nums]


def assert_invariants(world: World) -> None:
    """Every serial of every loaded range: at most one live leaf; every leaf of a finished
    purchase final; nothing outside the loaded ranges."""
    with world.engine.connect() as conn:
        leaves = conn.execute(select(cheque_leaves)).all()
        ranges = conn.execute(select(cheque_stock_ranges)).all()
        states: dict[str, str] = dict(
            conn.execute(text("SELECT purchase_id, state FROM cheque_purchases")).all()
        )
    live: dict[tuple[str, int], int] = {}
    for leaf in leaves:
        if leaf.state != "returned":
            key = (leaf.prefix, int(leaf.serial))
            live[key] = live.get(key, 0) + 1
        if states[leaf.purchase_id] in ("completed", "canceled", "failed"):
            assert leaf.state in ("issued", "voided", "returned"), leaf
        assert any(r.first_serial <= leaf.serial <= r.last_serial for r in ranges)
    assert all(n == 1 for n in live.values()), live


def test_an_order_retried_allocates_and_posts_once(world: World) -> None:
    pid = world.identified()
    before = balance(world)
    first = world.order(pid, request_id="T-CQ1:order-1", transfer_cheque=2)
    again = world.order(pid, request_id="T-CQ1:order-1", transfer_cheque=2)
    assert not first.code and first == again
    assert numbers(first) == [f"10{s:08d}" for s in range(10000001, 10000051)]
    assert balance(world) == before - 2 * FEE
    with world.engine.connect() as conn:
        posted = conn.execute(
            select(func.count())
            .select_from(journal_entries)
            .where(journal_entries.c.kind == "cheque_fee")
        ).scalar_one()
    assert posted == 1 and first.purchase.fee_entry_id
    # The same request id for another purchase is refused, not applied.
    other = world.identified()
    reused = world.order(other, request_id="T-CQ1:order-1", transfer_cheque=1)
    assert reused.code == "request_reused"
    assert_invariants(world)


def test_a_purchase_printed_and_taken_issues_every_serial(world: World) -> None:
    pid = world.identified()
    reply = world.order(pid, transfer_cheque=1, cash_cheque=1)
    assert [b.prefix for b in reply.purchase.books] == ["10", "20"]
    assert not world.leaves(pid, report(numbers(reply), P)).code
    done = world.finish(pid, pb.FINISH_KIND_TAKEN)
    assert done.purchase.state == pb.CHEQUE_STATE_COMPLETED
    assert all(b.issued_complete for b in done.purchase.books)
    assert done.purchase.fee_refunded == "0.00 CNY"
    assert balance(world) == Decimal("1000.00") - 2 * FEE
    assert_invariants(world)


def test_a_jam_mid_book_voids_the_printed_returns_the_rest_and_refunds_that_book(
    world: World,
) -> None:
    pid = world.identified()
    reply = world.order(pid, transfer_cheque=2)
    nums = numbers(reply)
    book1, book2 = nums[:25], nums[25:]
    world.leaves(pid, report(book1, P))
    world.leaves(pid, report(book1, pb.LEAF_OUTCOME_TAKEN))  # the first book was taken
    world.leaves(pid, report(book2[:10], P))
    world.leaves(pid, report(book2[10:11], pb.LEAF_OUTCOME_VOIDED, "spoiled"))
    world.leaves(pid, report(book2[11:], pb.LEAF_OUTCOME_RETURNED))
    end = world.finish(pid, pb.FINISH_KIND_FAULT, "media_jam", request_id="T-CQ1:fin")
    again = world.finish(pid, pb.FINISH_KIND_FAULT, "media_jam", request_id="T-CQ1:fin")
    assert end == again and end.purchase.state == pb.CHEQUE_STATE_FAILED
    assert end.purchase.fee_refunded == "15.00 CNY" and end.purchase.refund_entry_id
    assert [b.issued_complete for b in end.purchase.books] == [True, False]
    states = [leaf.state for leaf in end.purchase.books[1].leaves]
    assert states[:11] == [pb.LEAF_STATE_VOIDED] * 11
    assert states[11:] == [pb.LEAF_STATE_RETURNED] * 14
    assert balance(world) == Decimal("1000.00") - FEE  # one book's fee kept, refunded once
    with world.engine.connect() as conn:
        incident = conn.execute(select(cheque_incidents)).one()
    assert incident.kind == "media_jam" and end.purchase.incident_id == incident.incident_id
    # The returned serials are back in stock: the next book starts at the first of them...
    # but a book is contiguous, so it takes 14 returned + the next 11 free.
    nxt = world.identified()
    second = world.order(nxt, transfer_cheque=1)
    assert numbers(second)[0] == book2[11]
    assert_invariants(world)


def test_wrong_stock_and_a_book_not_taken_void_the_leaves(world: World) -> None:
    pid = world.identified()
    nums = numbers(world.order(pid, transfer_cheque=1))
    world.leaves(pid, report(nums[:1], pb.LEAF_OUTCOME_VOIDED, "wrong_stock"))
    end = world.finish(pid, pb.FINISH_KIND_FAULT, "wrong_stock")
    leaves = end.purchase.books[0].leaves
    assert leaves[0].void_reason == "wrong_stock"
    assert {leaf.void_reason for leaf in leaves[1:]} == {"retained"}  # unreported: retained
    pid2 = world.identified()
    nums2 = numbers(world.order(pid2, transfer_cheque=1))
    world.leaves(pid2, report(nums2, P))
    end2 = world.finish(pid2, pb.FINISH_KIND_FAULT, "not_taken")
    assert {leaf.void_reason for leaf in end2.purchase.books[0].leaves} == {"retained"}
    assert balance(world) == Decimal("1000.00")  # both fees refunded
    assert_invariants(world)


def test_cancel_before_printing_returns_everything_and_is_refused_after(world: World) -> None:
    pid = world.identified()
    nums = numbers(world.order(pid, transfer_cheque=1))
    end = world.finish(pid, pb.FINISH_KIND_CANCEL)
    assert end.purchase.state == pb.CHEQUE_STATE_CANCELED and balance(world) == Decimal("1000.00")
    assert {leaf.state for leaf in end.purchase.books[0].leaves} == {pb.LEAF_STATE_RETURNED}
    pid2 = world.identified()
    assert numbers(world.order(pid2, transfer_cheque=1)) == nums  # the same serials again
    world.leaves(pid2, report(nums[:1], P))
    assert world.finish(pid2, pb.FINISH_KIND_CANCEL).code == "wrong_state"
    assert_invariants(world)


def test_a_leaf_never_gets_a_second_final_outcome(world: World) -> None:
    pid = world.identified()
    nums = numbers(world.order(pid, transfer_cheque=1))
    world.leaves(pid, report(nums[:1], P))
    world.leaves(pid, report(nums[:1], pb.LEAF_OUTCOME_TAKEN))
    assert not world.leaves(pid, report(nums[:1], pb.LEAF_OUTCOME_TAKEN)).code  # same: no-op
    for outcome, reason in ((pb.LEAF_OUTCOME_VOIDED, "spoiled"), (pb.LEAF_OUTCOME_RETURNED, "")):
        reply = world.leaves(pid, report(nums[:1], outcome, reason))
        assert reply.code == "leaf_conflict" and reply.field == "leaves[0].outcome"
    world.leaves(pid, report(nums[1:2], pb.LEAF_OUTCOME_RETURNED))
    assert world.leaves(pid, report(nums[1:2], P)).code == "leaf_conflict"
    bad = world.leaves(pid, report(nums[2:3], pb.LEAF_OUTCOME_VOIDED, "lost"))
    assert bad.code == "invalid_argument" and bad.field == "leaves[0].void_reason"
    assert world.leaves(pid, report(["1099999999"], P)).code == "unknown_leaf"


def _leaf(**values: Any) -> dict[str, Any]:
    row = {
        "purchase_id": "x",
        "book_id": 1,
        "prefix": "10",
        "serial": 10000001,
        "state": "allocated",
        "void_reason": None,
        "updated_at": T0,
    }
    row.update(values)
    return row


def test_the_database_holds_one_live_leaf_per_serial(engine: Engine) -> None:
    cases = [
        ({"state": "allocated"}, False),
        ({"state": "issued"}, False),
        ({"state": "voided", "void_reason": "spoiled"}, False),
        ({"state": "returned"}, True),
    ]
    for serial, (second, allowed) in enumerate(cases, start=10000001):
        with engine.begin() as conn:
            conn.execute(cheque_leaves.insert().values(**_leaf(serial=serial, state="issued")))
        try:
            with engine.begin() as conn:
                conn.execute(cheque_leaves.insert().values(**_leaf(serial=serial, **second)))
        except IntegrityError:
            assert not allowed, second
        else:
            assert allowed, second


def test_the_database_refuses_a_state_and_reason_that_do_not_go_together(engine: Engine) -> None:
    for values in (
        {"state": "voided"},
        {"state": "voided", "void_reason": "lost"},
        {"state": "issued", "void_reason": "spoiled"},
        {"state": "sold"},
    ):
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(cheque_leaves.insert().values(**_leaf(**values)))


def test_two_terminals_worth_of_orders_at_once_never_share_a_serial(world: World) -> None:
    pids = [world.identified() for _ in range(3)]
    replies: dict[str, pb.ChequeReply] = {}

    def buy(pid: str) -> None:
        replies[pid] = world.order(pid, request_id=f"T-CQ1:race-{pid}", transfer_cheque=1)

    threads = [threading.Thread(target=buy, args=(pid,)) for pid in pids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(not replies[pid].code for pid in pids), replies
    taken = [set(numbers(replies[pid])) for pid in pids]
    assert sum(len(t) for t in taken) == len(set().union(*taken)) == 75
    assert balance(world) == Decimal("1000.00") - 3 * FEE
    assert_invariants(world)


def test_a_purchase_left_unfinished_gets_one_stale_incident(world: World) -> None:
    pid = world.identified()
    world.order(pid, transfer_cheque=1)
    assert sweep_stale(world.core) == []
    world.clock.advance(minutes=31)
    assert sweep_stale(world.core) == [pid]
    assert sweep_stale(world.core) == []
    reply = world.core.query("T-CQ1", pid).purchases[0]
    assert reply.incident_id and reply.state == pb.CHEQUE_STATE_ORDERED  # not settled by it
