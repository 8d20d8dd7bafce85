"""Issue 15 acceptance, the terminal side with real processes (server with the cheques
capability, the simulator's ID reader, face module and IPP cheque printer, the agent with its
kiosk page): faults end the order with every serial accounted — a paper jam mid-book (the
printed leaf voided, the jammed one spoiled, the rest back in stock, the fee refunded, an
incident), wrong stock (the feeder OCR disagrees: nothing printed), a book not taken
(retracted and voided) — and the agent is killed with SIGKILL after every journaled step of a
cheque-book purchase — every step enumerated from a clean run's journal, not sampled — and
started again. The failpoint ``cheque_purchase.after=N`` (agent/failpoints.py) kills it right
after step N is durable and before anything acts on it. The kill points run from the last step
down: the agent restarted after kill N (which recovers purchase N, journaling only steps past N)
already has kill N-1 set for the next case, so each case costs one agent start, not two.

The customer is a script on the kiosk page's WebSocket (purchase code, ID card, face, one
3-leaf book); after the restart the engine finishes the purchase by itself (a customer stage
cancels, printing resumes, the book is taken from the slot). Then for every run: the server's
purchase is final, the fee was posted once and, if the purchase did not complete, refunded
once (the balance moved by exactly the fee kept), every serial of the purchase is in exactly
one final state (issued, voided or back in stock) and none was printed twice; at the end the
outbox is empty, holds no purchase code, and the electronic journal verifies.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import grpc
import pytest
from sqlalchemy import text

from branchline.agent.journal.store import Store
from branchline.server.cheques import admin
from branchline.v1 import cheques_pb2 as pb
from tests.browser.cheque_support import (
    ACCOUNT,
    ACCOUNT_NUMBER,
    CHEQUE_DEVICES,
    issue_code,
    last_job,
    printed_numbers,
    purchase_row,
    seed_cheques,
    serial_states,
    server_db,
)
from tests.browser.kiosk_support import KioskBranch, kiosk_branch
from tests.integration.kiosk_ws import KioskSocket, PageGone
from tests.integration.stack import Stack, wait_for
from tests.integration.tube_support import balances, start_agent

BOOK_TYPE = "paying_in"  # a 3-leaf book here, to keep the enumeration short
PREFIX = "30"
FINAL = {"completed", "canceled", "failed"}


@pytest.fixture(scope="module")
def branch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KioskBranch]:
    logs = tmp_path_factory.mktemp("cheque-crash-logs")
    with kiosk_branch(
        logs, customer_timeout=60, extra_devices=CHEQUE_DEVICES, language="en"
    ) as started:
        stack = started.stack
        seed_cheques(stack)
        engine = server_db(stack)
        now = datetime.now(UTC)
        admin.put_book_type(
            engine,
            {
                "book_type": BOOK_TYPE, "name": "Paying-in form", "prefix": PREFIX,
                "leaves_per_book": 3, "currency": "CNY", "printing_cost_minor": 500,
                "handling_fee_minor": 200, "period": "month", "period_limit": 1000,
            },
            "test",
            now,
        )  # fmt: skip
        admin.load_stock(engine, stack.terminal_id, BOOK_TYPE, 20000001, 20000300, "test", now)
        engine.dispose()
        stack.sim_act("cheque_printer", "load_stock", first="20000001", count="300")
        stack.sim_act("cheque_printer", "set_leaf_time", seconds="0.01")
        stack.sim_act("id_reader", "place", card="valid")
        stack.sim_act("face_camera", "present", scene="live", person="obama", index="0")
        yield started


@dataclass
class Agent:
    """The branch's agent and the failpoint its running process was started with."""

    branch: KioskBranch
    armed: str = ""  # the BRANCHLINE_FAILPOINTS of the running agent ("" none)

    def start(self, failpoint: str = "") -> None:
        """Start the agent (the previous one is dead) with ``failpoint`` set; wait for its
        devices and its link, not its page: a purchase it recovers may be presenting a book
        that must be taken before the take timeout."""
        self.branch.stack.agent_socket.unlink(missing_ok=True)
        start_agent(self.branch.stack, {"BRANCHLINE_FAILPOINTS": failpoint} if failpoint else None)
        self.armed = failpoint

    def ready(self, failpoint: str) -> None:
        """A running agent with exactly ``failpoint`` set (restarted if not), its page served."""
        if self.armed != failpoint or self.branch.stack.procs["agent"].popen.poll() is not None:
            self.branch.kill_agent()
            self.start(failpoint)
        wait_for(lambda: branch_page(self.branch), 30, "the kiosk page")


@pytest.fixture(scope="module")
def agent(branch: KioskBranch) -> Agent:
    return Agent(branch)


async def settle_screen(url: str) -> None:
    """Back to attract: a purchase the restarted agent finished by itself may be on screen."""
    with contextlib.suppress(PageGone, TimeoutError, OSError):
        async with KioskSocket(url) as page:
            deadline = asyncio.get_running_loop().time() + 60
            while asyncio.get_running_loop().time() < deadline:
                await page.next_frame(timeout=1)
                data = page.frame.get("data") or {}
                if page.frame.get("screen") == "attract":
                    return
                if page.frame.get("screen") == "cheque" and data.get("finished"):
                    await page.act("done")


async def drive(url: str, code: str) -> None:
    """The customer: purchase code, ID card, face, one book ordered; ends there or when the
    agent dies."""
    with contextlib.suppress(PageGone, TimeoutError, OSError):
        async with KioskSocket(url) as page:
            await page.wait("attract", timeout=60)
            await page.act("start", service="cheque")
            await page.wait("cheque_method")
            await page.act("method", method="code")
            await page.wait("cheque_code")
            await page.act("submit", account_number=ACCOUNT_NUMBER, purchase_code=code)
            await page.wait("cheque", lambda d: d.get("step") == "id")
            await page.act("read_id")
            await page.wait("cheque", lambda d: d.get("step") == "face")
            await page.act("capture")
            await page.wait("cheque", lambda d: d.get("step") == "order")
            await page.act("order", lines=[{"book_type": BOOK_TYPE, "books": 1}])
            # The book is taken from the slot by take_books_until_final.
            await page.wait("cheque", lambda d: d.get("step") != "order", timeout=60)


def purchase_ids(branch: KioskBranch) -> list[str]:
    """The server's purchases, newest first."""
    engine = server_db(branch.stack)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT purchase_id FROM cheque_purchases ORDER BY created_at DESC")
        ).all()
    engine.dispose()
    return [str(r[0]) for r in rows]


def new_purchase(branch: KioskBranch, known: set[str]) -> str:
    def look() -> str | None:
        fresh = [p for p in purchase_ids(branch) if p not in known]
        return fresh[0] if fresh else None

    return str(wait_for(look, 60, "the purchase to reach the server"))


def take_if_presented(stack: Stack) -> bool:
    with contextlib.suppress(grpc.RpcError):
        if stack.sim_act("cheque_printer", "status").get("presenter") == "presented":
            stack.sim_act("cheque_printer", "take_book")
    return False


def take_books_until_final(branch: KioskBranch, purchase_id: str) -> dict[str, Any]:
    stack = branch.stack

    def final() -> dict[str, Any] | None:
        take_if_presented(stack)
        row = purchase_row(stack, purchase_id)
        return row if row["state"] in FINAL else None

    return wait_for(final, 90, "the purchase to end on the server", interval=0.3)


def run_once(agent: Agent, failpoint: str, then: str = "") -> tuple[str, list[str]]:
    """One purchase with ``failpoint`` set in the agent (empty: a clean run). The agent that
    recovers from the kill is started with ``then`` set, the next case's failpoint: it must be
    one that recovery cannot reach (a step number below ``failpoint``'s)."""
    branch = agent.branch
    stack = branch.stack
    agent.ready(failpoint)
    since = last_job(stack)
    before = balances(stack)[ACCOUNT]
    known = set(purchase_ids(branch))
    asyncio.run(settle_screen(branch.url))
    asyncio.run(drive(branch.url, issue_code(stack)))
    process = stack.procs["agent"]
    if failpoint:
        # The customer waits at the slot and takes the book the moment it is offered, also by
        # the restarted agent (whose take time counts from before the kill: on a loaded
        # machine a restart can use it all up, and polling for the book would come too late).
        stack.sim_act("cheque_printer", "take_on_present", on="true")
    try:
        if failpoint:
            wait_for(
                lambda: take_if_presented(stack) or process.popen.poll() is not None,
                60,
                f"the failpoint {failpoint}",
                interval=0.3,
            )
            assert f"failpoint {failpoint}: SIGKILL" in process.log()
            agent.start(then)
        purchase_id = new_purchase(branch, known)
        row = take_books_until_final(branch, purchase_id)
    finally:
        stack.sim_act("cheque_printer", "take_on_present", on="false")
    # The fee: posted once; kept only for a book issued complete, else refunded once.
    fee = Decimal(int(row["fee_total_minor"])) / 100
    refund = Decimal(int(row["refund_minor"])) / 100
    if row["state"] == "completed":
        assert refund == 0 and row["refund_entry_id"] is None
    elif fee:
        assert refund == fee and row["refund_entry_id"] is not None
    assert balances(stack)[ACCOUNT] == before - fee + refund
    # Every serial in exactly one final state; nothing printed twice.
    states = serial_states(stack, purchase_id)
    assert set(states.values()) <= {"issued", "voided", "returned"}, states
    printed = printed_numbers(stack, since)
    assert len(printed) == len(set(printed)), printed
    if row["state"] == "completed":
        assert printed == sorted(states) and set(states.values()) == {"issued"}
    return str(row["state"]), printed


def branch_page(branch: KioskBranch) -> bool:
    from tests.browser.kiosk_support import page_served

    return page_served(branch.url)


def journal_steps(branch: KioskBranch) -> list[str]:
    """The steps of the newest purchase in the agent's journal (read while it runs: WAL)."""
    store = Store(branch.stack.state_dir, branch.stack.terminal_id)
    try:
        purchase_id = purchase_ids(branch)[0]
        txn = store.txjournal.get(purchase_id)
        return [str(s.data.get("to", s.name)) for s in txn.steps]
    finally:
        store.close()


# A clean run's journal (checked by test_clean_run_journals_these_steps).
STEPS = [
    "open", "awaiting_id", "checking_id", "awaiting_face", "checking_face",
    "awaiting_order", "ordering", "printing", "printing", "printing", "presenting",
    "finishing", "completed",
]  # fmt: skip


def test_clean_run_journals_these_steps(agent: Agent) -> None:
    outcome, printed = run_once(agent, "")
    assert outcome == "completed" and len(printed) == 3
    assert journal_steps(agent.branch) == STEPS


def after(number: int) -> str:
    return f"cheque_purchase.after={number}" if number else ""


# From the last step down (see the module's docstring); every step from 1 to len(STEPS) - 1.
@pytest.mark.parametrize(
    "number", range(len(STEPS) - 1, 0, -1), ids=lambda n: f"{n}-{STEPS[n - 1]}"
)
def test_sigkill_after_step(agent: Agent, number: int) -> None:
    outcome, _ = run_once(agent, after(number), then=after(number - 1))
    # A kill while the customer acts cancels; from the order on, the purchase completes.
    assert outcome == ("canceled" if number <= 6 else "completed")


def test_outbox_empty_and_ejournal_verifies(agent: Agent) -> None:
    branch = agent.branch
    stack = branch.stack
    wait_for(lambda: not any_unfinished(branch), 60, "the agent's purchases to end")
    stack.procs["agent"].stop()
    store = Store(stack.state_dir, stack.terminal_id)
    try:
        assert store.outbox.stats().pending == 0
        starts = [
            pb.ChequeStart.FromString(message.payload)
            for message in map(store.outbox.get, range(1, store.outbox.stats().last_seq + 1))
            if message.kind == "cheque_start"
        ]
        assert starts and not any(s.purchase_code.purchase_code for s in starts)
        report = store.ejournal.verify()
        assert report.ok, report
    finally:
        store.close()
    agent.start()
    agent.ready("")


def any_unfinished(branch: KioskBranch) -> bool:
    store = Store(branch.stack.state_dir, branch.stack.terminal_id)
    try:
        return any(t.kind == "cheque_purchase" for t in store.txjournal.unfinished())
    finally:
        store.close()


def purchase(
    agent: Agent, take: bool = True
) -> tuple[dict[str, Any], dict[str, str], list[str], Decimal]:
    """One purchase of a 3-leaf book by purchase code; the book taken from the slot if
    ``take``. Returns the server's record, every serial's state, what the paper shows, and
    how much the account moved."""
    agent.ready("")
    branch = agent.branch
    stack = branch.stack
    since = last_job(stack)
    before = balances(stack)[ACCOUNT]
    known = set(purchase_ids(branch))
    asyncio.run(settle_screen(branch.url))
    asyncio.run(drive(branch.url, issue_code(stack)))
    purchase_id = new_purchase(branch, known)
    if take:
        row = take_books_until_final(branch, purchase_id)
    else:
        row = wait_for(
            lambda: (r := purchase_row(stack, purchase_id))["state"] in FINAL and r,
            90,
            "the purchase to end",
        )
    moved = balances(stack)[ACCOUNT] - before
    return row, serial_states(stack, purchase_id), printed_numbers(stack, since), moved


def realign_stock(branch: KioskBranch, states: dict[str, str]) -> None:
    """Staff reload the cassette at the next serial the server will allocate."""
    returned = sorted(n for n, s in states.items() if s == "returned")
    first = int(returned[0][2:]) if returned else max(int(n[2:]) for n in states) + 1
    branch.stack.sim_act("cheque_printer", "load_stock", first=str(first), count="200")


def test_paper_jam_mid_book(agent: Agent) -> None:
    branch = agent.branch
    stack = branch.stack
    stack.sim_act("cheque_printer", "jam_after", leaves="1")
    try:
        row, states, printed, moved = purchase(agent, take=False)
    finally:
        stack.sim_fault("cheque_printer", "media_jam", False)
    assert (row["state"], row["reason"]) == ("failed", "media_jam")
    numbers = sorted(states)
    assert printed == numbers[:1]  # the first leaf printed, the second jammed
    assert [states[n] for n in numbers] == ["voided", "voided", "returned"]
    assert row["incident_id"] is not None
    # The book was not issued complete: its fee refunded, once.
    assert row["refund_entry_id"] is not None and moved == 0
    realign_stock(branch, states)


def test_wrong_stock_stops_before_printing(agent: Agent) -> None:
    branch = agent.branch
    stack = branch.stack
    stack.sim_fault("cheque_printer", "wrong_stock", True)
    try:
        row, states, printed, moved = purchase(agent, take=False)
    finally:
        stack.sim_fault("cheque_printer", "wrong_stock", False)
    assert (row["state"], row["reason"]) == ("failed", "ocr_mismatch")
    assert printed == []
    assert set(states.values()) == {"voided"} and moved == 0
    realign_stock(branch, states)


def test_book_not_taken_is_retracted_and_voided(agent: Agent) -> None:
    branch = agent.branch
    row, states, printed, moved = purchase(agent, take=False)
    assert (row["state"], row["reason"]) == ("failed", "not_taken")
    assert printed == sorted(states)
    assert set(states.values()) == {"voided"} and moved == 0
    facts = branch.stack.sim_act("cheque_printer", "status")
    assert facts["presenter"] == "retracted"
    realign_stock(branch, states)
