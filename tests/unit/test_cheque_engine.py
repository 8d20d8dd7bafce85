"""The cheque purchase engine (agent/cheques/): its state table, each path to an end, the
leaf outcomes of every fault, and recovery from the journal — over the real journal store
and outbox sender, a fake server that answers per request_id, and in-memory devices."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from pathlib import Path
from typing import Any

import pytest

from branchline.agent.cheques import closing, customer
from branchline.agent.cheques import machine as m
from branchline.agent.cheques.engine import ChequeRefused, Live
from branchline.agent.cheques.plan import fault_reports
from branchline.agent.config import TransactionSettings
from branchline.v1 import cheques_pb2 as pb
from tests.unit.cheque_fakes import LEAF, FakePrinter, FakeServer, World, make_world

BOOK = [{"book_type": "transfer_cheque", "books": 1}]


def test_every_state_reaches_an_end() -> None:
    table = m.MACHINE.transitions
    for state in table:
        seen, todo = {state}, deque([state])
        while todo:
            for nxt in table.get(todo.popleft(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        assert seen & m.FINAL, f"{state} cannot reach a final state"
    assert set(m.SCREENS) == set(table)


async def finished(live: Live, timeout: float = 10.0) -> None:
    async def wait() -> None:
        while not live.finished:
            changed = live.changed
            await changed.wait()

    await asyncio.wait_for(wait(), timeout)


async def identified(world: World, lines: Any = BOOK) -> Live:
    live = await customer.start_code(world.engine, "6222020200112233", "123456")
    assert live.stage == m.AWAITING_ID, live.code
    await customer.read_id(world.engine, live)
    assert live.stage == m.AWAITING_FACE, live.code
    await customer.capture_face(world.engine, live)
    assert live.stage == m.AWAITING_ORDER, live.code
    if lines is not None:
        await customer.order(world.engine, live, lines)
    return live


def steps(world: World, purchase_id: str) -> list[str]:
    txn = world.store.txjournal.get(purchase_id)
    return [s.data.get("to", s.name) for s in txn.steps]


async def close(world: World) -> None:
    await world.engine.stop()
    world.sender_task.cancel()


@pytest.mark.asyncio
async def test_purchase_prints_the_book_in_order_and_completes(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    live = await identified(world, [{"book_type": "transfer_cheque", "books": 2}])
    await finished(live)
    assert live.stage == m.COMPLETED
    numbers = [f"10{s:08d}" for s in range(10000001, 10000007)]
    assert world.printer.printed == numbers
    assert set(world.server.leaf_state.values()) == {"ISSUED"}
    assert world.server.fee_posted == 1 and world.server.refunds == 0
    assert steps(world, live.purchase_id) == [
        "open", "awaiting_id", "checking_id", "awaiting_face", "checking_face",
        "awaiting_order", "ordering", "printing", "printing", "printing", "presenting",
        "printing", "printing", "printing", "presenting", "finishing", "completed",
    ]  # fmt: skip
    # Every message went once, under its own key; the secret code is not kept.
    keys = [body.request_id for _, body in world.server.applied]
    assert len(keys) == len(set(keys))
    start = world.store.outbox.get(1)
    assert b"123456" not in start.payload
    assert world.store.ejournal.verify().ok
    view = customer.view(world.engine, live)
    assert view["reference"] == f"BLCQ:K-1:{live.purchase_id}"
    assert view["printed"] == view["total"] == 6
    await close(world)


@pytest.mark.asyncio
async def test_paper_jam_mid_book_accounts_every_leaf(tmp_path: Path) -> None:
    world = make_world(tmp_path, printer=FakePrinter(jam_after=1))
    live = await identified(world)
    await finished(live)
    assert live.stage == m.FAILED
    assert world.server.leaf_state == {
        "1010000001": "VOIDED",  # printed, retained (book cut short)
        "1010000002": "VOIDED",  # jammed: spoiled
        "1010000003": "RETURNED",  # never left the cassette
    }
    assert world.server.purchase.reason == "media_jam"
    assert world.printer.retained == ["1010000001"]
    assert world.server.refunds == 1
    # The receipt says what happened: the book not issued, the refund, why; the QR reference.
    receipt = closing.receipt_for(world.engine, live, m.FAILED)
    assert receipt.reference == f"BLCQ:K-1:{live.purchase_id}"
    assert dict(receipt.lines) == {
        "Account": "6222********2233",
        "transfer cheque": "1010000001-1010000003 not issued",
        "Fee": "12.50 CNY",
        "Refunded": "12.50 CNY",
        "Reason": "media jam",
    }
    assert receipt.outcome == "failed"
    await close(world)


@pytest.mark.asyncio
async def test_wrong_stock_stops_before_printing(tmp_path: Path) -> None:
    world = make_world(tmp_path, printer=FakePrinter(wrong_stock=True))
    live = await identified(world)
    await finished(live)
    assert live.stage == m.FAILED
    assert world.printer.printed == []
    reports = [b for k, b in world.server.applied if k == "cheque_leaves"][0].leaves
    assert [(r.number, r.void_reason) for r in reports] == [("1010000001", "wrong_stock")]
    assert world.server.purchase.reason == "ocr_mismatch"
    await close(world)


@pytest.mark.asyncio
async def test_book_not_taken_is_retracted_and_voided(tmp_path: Path) -> None:
    world = make_world(tmp_path, printer=FakePrinter(take=False))
    live = await identified(world)
    await finished(live)
    assert live.stage == m.FAILED
    assert world.printer.retained == ["1010000001", "1010000002", "1010000003"]
    assert set(world.server.leaf_state.values()) == {"VOIDED"}
    assert world.server.purchase.reason == "not_taken"
    await close(world)


@pytest.mark.asyncio
async def test_third_failed_face_locks(tmp_path: Path) -> None:
    world = make_world(tmp_path, server=FakeServer(face_failures=3))
    live = await customer.start_code(world.engine, "6222020200112233", "123456")
    await customer.read_id(world.engine, live)
    for left in (2, 1):
        await customer.capture_face(world.engine, live)
        assert (live.stage, live.code) == (m.AWAITING_FACE, "no_match")
        assert customer.view(world.engine, live)["attempts_left"] == left
    await customer.capture_face(world.engine, live)
    assert (live.stage, live.code) == (m.LOCKED, "purchaser_locked")
    await close(world)


@pytest.mark.asyncio
async def test_refused_start_ends_refused(tmp_path: Path) -> None:
    world = make_world(tmp_path, server=FakeServer(refuse_start="account_frozen"))
    live = await customer.start_code(world.engine, "6222020200112233", "123456")
    assert (live.stage, live.code) == (m.REFUSED, "account_frozen")
    await close(world)


@pytest.mark.asyncio
async def test_cancel_before_printing(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    live = await identified(world, lines=None)
    await customer.cancel(world.engine, live)
    await finished(live)
    assert live.stage == m.CANCELED
    assert world.server.purchase.reason == "customer_canceled"
    with pytest.raises(ChequeRefused) as refused:
        await customer.cancel(world.engine, live)
    assert refused.value.code == "wrong_stage"
    await close(world)


@pytest.mark.asyncio
async def test_customer_timeout_cancels(tmp_path: Path) -> None:
    settings = TransactionSettings(customer_timeout=0.2, take_timeout=1.0, poll_seconds=0.05)
    world = make_world(tmp_path, settings=settings)
    live = await customer.start_code(world.engine, "6222020200112233", "123456")
    await finished(live)
    assert live.stage == m.CANCELED and world.server.purchase.reason == "timeout"
    await close(world)


@pytest.mark.parametrize(
    ("lines", "field"),
    [
        ([], "lines"),
        ([{"book_type": "nope", "books": 1}], "lines[0].book_type"),
        ([{"book_type": "transfer_cheque", "books": -1}], "lines[0].books"),
        ([{"book_type": "transfer_cheque", "books": 99}], "lines[0].books"),
        ([{"book_type": "transfer_cheque", "books": 1}] * 2, "lines[1].book_type"),
        ([{"book_type": "transfer_cheque", "books": 0}], "lines"),
    ],
)
@pytest.mark.asyncio
async def test_bad_orders_are_refused_by_field(tmp_path: Path, lines: Any, field: str) -> None:
    world = make_world(tmp_path)
    live = await identified(world, lines=None)
    with pytest.raises(ChequeRefused) as refused:
        await customer.order(world.engine, live, lines)
    assert refused.value.field == field
    assert live.stage == m.AWAITING_ORDER
    await close(world)


@pytest.mark.asyncio
async def test_bad_purchase_code_input(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    for account, code, field in (
        ("12", "123456", "account_number"),
        ("6222020200112233", "12a", "purchase_code"),
    ):
        with pytest.raises(ChequeRefused) as refused:
            await customer.start_code(world.engine, account, code)
        assert refused.value.field == field
    await close(world)


@pytest.mark.asyncio
async def test_recovery_mid_book_prints_no_leaf_twice(tmp_path: Path) -> None:
    server, printer = FakeServer(), FakePrinter()
    world = make_world(tmp_path, server=server, printer=printer)
    live = await identified(world, lines=None)
    # Stop the engine right after the second leaf's step is journaled (before it prints).
    owner = world.owners["cheque_printer"]
    gate = asyncio.Event()
    original = owner.handler

    def handler(command: str, params: dict[str, Any]) -> Any:
        if command == "print_leaf" and params["serial"] == 10000002:
            gate.set()
            raise asyncio.CancelledError
        return original(command, params)

    owner.handler = handler
    await customer.order(world.engine, live, BOOK)
    await asyncio.wait_for(gate.wait(), 5)
    await close(world)
    world.store.db.close() if hasattr(world.store.db, "close") else None
    # A new agent over the same journal: recovery carries the purchase to its end.
    again = make_world(tmp_path, server=server, printer=printer)
    await again.engine.recover()
    recovered = again.engine.live[live.purchase_id]
    assert recovered.recovered and recovered.stage == m.PRINTING
    await finished(recovered)
    assert recovered.stage == m.COMPLETED
    assert printer.printed == ["1010000001", "1010000002", "1010000003"]
    assert set(server.leaf_state.values()) == {"ISSUED"}
    assert server.fee_posted == 1
    assert again.store.ejournal.verify().ok
    await close(again)


@pytest.mark.asyncio
async def test_recovery_in_a_customer_stage_cancels(tmp_path: Path) -> None:
    server = FakeServer()
    world = make_world(tmp_path, server=server)
    live = await identified(world, lines=None)
    await close(world)
    again = make_world(tmp_path, server=server)
    await again.engine.recover()
    recovered = again.engine.live[live.purchase_id]
    await finished(recovered)
    assert recovered.stage == m.CANCELED and server.purchase.reason == "recovery"
    await close(again)


def test_fault_reports() -> None:
    plan = {
        "header": {},
        "books": [
            {"book_type": "t", "prefix": "10", "first": 1, "last": 3},
            {"book_type": "t", "prefix": "10", "first": 4, "last": 5},
        ],
    }
    outcome = {
        r.number[-1]: (LEAF.Name(r.outcome)[13:], r.void_reason)
        for r in fault_reports(plan, 0, 1, "cover_open")
    }
    assert outcome == {
        "1": ("VOIDED", "retained"),
        "2": ("RETURNED", ""),
        "3": ("RETURNED", ""),
        "4": ("RETURNED", ""),
        "5": ("RETURNED", ""),
    }
    # Paper out: the terminal cannot vouch for the blank leaves; the server voids them.
    assert [r.number for r in fault_reports(plan, 0, 0, "media_empty")] == []
    assert len(fault_reports(plan, 1, 2, "not_taken")) == 2


def test_engine_has_a_handler_for_every_open_state() -> None:
    from branchline.agent.cheques import closing, printing, steps

    handlers = {**steps.HANDLERS, **printing.HANDLERS, **closing.HANDLERS}
    assert set(handlers) == set(m.MACHINE.transitions) - m.FINAL


@pytest.mark.asyncio
async def test_a_plan_the_journal_refuses_fails_the_order_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The print header's account number passes the Luhn check: the journal takes it for a
    # card number and will never store the plan, though the server charged the fee.
    server = FakeServer(account_number="6222020200112230")
    world = make_world(tmp_path, server=server)
    caplog.set_level(logging.INFO, logger="branchline.agent")
    live = await identified(world)
    await finished(live)
    assert (live.stage, live.code) == (m.FAILED, "not_completed")
    assert steps(world, live.purchase_id)[-3:] == [m.ORDERING, m.FAILING, m.FAILED]
    finishes = [body for kind, body in server.applied if kind == "cheque_finish"]
    assert [(f.kind, f.reason) for f in finishes] == [(pb.FINISH_KIND_FAULT, "journal_refused")]
    assert server.refunds == 1 and world.printer.printed == []
    assert set(server.leaf_state.values()) == {"VOIDED"}  # the server opens an incident
    logged = {r.getMessage(): getattr(r, "branchline_fields", {}) for r in caplog.records}
    assert logged["cheque_journal_refused"]["field"] == "data.plan.header.account"
    assert "cheque_stage_failed" not in logged
    assert not [r for r in caplog.records if "6222020200112230" in repr(r.__dict__)]
    await close(world)
