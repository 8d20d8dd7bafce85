"""Issue 15, the staff side in Chromium against real processes (server, console): a back-office
clerk enrols a purchaser's face by uploading a photograph, registers the serial range loaded
into a terminal's cassette, issues a one-time purchase code; a terminal (speaking TerminalLink
as the agent would) buys a book with that code, the purchaser's ID card and a live face; the
console's branch display (/display, a second page) shows the buyer, the masked ID number, the
card photo (loaded from the console's /display/photos/ route: no pushed state carries it, the
page's policy allows no data: images) and the company's contact person once identity passes,
then the order's numbers and fee, pushed live. A refused stock registration names its reason
on the page."""

from __future__ import annotations

import queue
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from branchline.server import pki
from branchline.server.cheques.seed import Company, seed_company, seed_rules
from branchline.server.ledger.accounts import open_account
from branchline.server.ledger.adapter import EmbeddedLedger
from branchline.server.ledger.cards import add_customer
from branchline.server.ledger.postings import Reference
from branchline.server.ledger.requests import DepositRequest
from branchline.server.storage import open_database
from branchline.v1 import cheques_pb2 as cpb
from branchline.v1 import common_pb2, terminal_link_pb2, terminal_link_pb2_grpc
from branchline.v1 import dispatch_pb2 as dpb
from branchline.v1 import dispatch_pb2_grpc as dpb_grpc
from tests.browser.console_support import Console, console_process
from tests.integration.dispatch_support import channel
from tests.integration.stack import Stack
from tests.unit.cheque_support import OBAMA_ID, capture, good_card

FACES = Path(__file__).resolve().parents[1] / "fixtures" / "faces"
NOW = datetime.now(UTC)
ACME = Company(
    "ACC-ACME",
    "6222020200112233",
    "Acme Trading Co",
    "basic",
    "BR-001",
    "Li Na",
    "010-5555-0101",
    "P-OBAMA",
    "Barack Obama",
    OBAMA_ID,
)


class Terminal:
    """One TerminalLink stream, as the agent holds it: send a message, read its answer."""

    def __init__(self, stack: Stack) -> None:
        self._out: queue.Queue[terminal_link_pb2.TerminalMessage | None] = queue.Queue()
        self._seq = 0
        self._channel = channel(stack, f"terminal:{stack.terminal_id}")
        stub = terminal_link_pb2_grpc.TerminalLinkStub(self._channel)
        self._call = stub.Connect(iter(self._out.get, None))
        register = terminal_link_pb2.Register(
            terminal_id=stack.terminal_id,
            branch=stack.branch,
            agent_version="test",
            kind=common_pb2.TERMINAL_KIND_SELF_SERVICE,
            service_state=common_pb2.SERVICE_STATE_IN_SERVICE,
        )
        assert self.send(register=register).register_ack.terminal_id == stack.terminal_id

    def send(self, **body: Any) -> terminal_link_pb2.ServerMessage:
        self._seq += 1
        self._out.put(terminal_link_pb2.TerminalMessage(seq=self._seq, **body))
        for answer in self._call:
            if answer.ack_seq == self._seq:
                return answer
        raise AssertionError("the link closed")

    def cheque(self, body: str, **fields: Any) -> cpb.ChequeReply:
        kinds = {
            "cheque_start": cpb.ChequeStart,
            "cheque_id_card": cpb.ChequeIdCard,
            "cheque_face": cpb.ChequeFace,
            "cheque_order": cpb.ChequeOrder,
        }
        message = kinds[body](request_id=f"T-0001:{uuid.uuid4().hex[:8]}", **fields)
        return self.send(**{body: message}).cheque_reply

    def close(self) -> None:
        self._out.put(None)
        self._call.cancel()
        self._channel.close()


@dataclass
class Branch:
    stack: Stack
    console_url: str
    terminal: Terminal


def seed(stack: Stack) -> None:
    engine = open_database(f"sqlite:///{stack.root / 'server.db'}")
    try:
        add_customer(engine, "C-ACME", ACME.company_name, NOW)
        open_account(engine, "C-ACME", "cash", "CNY", NOW, account_id=ACME.account_id)
        EmbeddedLedger(engine).post_deposit(
            DepositRequest(
                Reference("seed", "fund-acme"),
                account_id=ACME.account_id,
                branch=stack.branch,
                currency="CNY",
                amount="1000.00",
                now=NOW,
            )
        )
        seed_rules(engine, NOW)
        seed_company(engine, ACME, NOW)
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def branch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Branch]:
    stack = Stack(tmp_path_factory.mktemp("cheques"))
    stack.init_pki()
    pki.issue_user_cert(stack.pki, "teller", "BO-1")
    try:
        stack.start_server()
        admin = dpb_grpc.DispatchAdminStub(channel(stack, "operator:ops"))
        admin.AddBranch(dpb.AddBranchRequest(branch_id=stack.branch, name="North"), timeout=10)
        admin.AddTeller(
            dpb.AddTellerRequest(
                teller_id="BO-1", name="Clerk", branch=stack.branch, skills=["back_office"]
            ),
            timeout=10,
        )
        terminal = Terminal(stack)
        seed(stack)
        with console_process(stack, "teller:BO-1") as url:
            yield Branch(stack, url, terminal)
        terminal.close()
    finally:
        stack.stop_all()


def cheques_screen(console: Console) -> Page:
    page = console.page
    page.locator('[data-view-button="cheques"]').click()
    page.locator('[data-screen="cheques"] [data-part="purchasers"]').wait_for()
    return page


# long: one purchase end to end, the display checked at each step
def test_enrol_load_stock_issue_a_code_and_the_display_follows_a_purchase(
    browser: Browser, branch: Branch, request: pytest.FixtureRequest
) -> None:
    console = Console(browser, branch.console_url, request.node.name)
    page = cheques_screen(console)
    row = page.locator('[data-purchaser="P-OBAMA"]')
    expect(row).to_have_attribute("data-enrolled", "no")
    row.locator('[data-role="face-file"]').set_input_files(str(FACES / "obama_1.jpg"))
    expect(row).to_have_attribute("data-enrolled", "yes", timeout=30_000)

    page.select_option("#cq-terminal", branch.stack.terminal_id)
    page.select_option("#cq-book-type", "transfer_cheque")
    page.fill("#cq-first", "10000001")
    page.fill("#cq-last", "10000100")
    page.locator('[data-action="cheques.load"]').click()
    stock = page.locator(f'[data-part="stock"] tr[data-terminal="{branch.stack.terminal_id}"]')
    expect(stock.locator('[data-role="books-free"]')).to_have_text("4", timeout=15_000)

    row.locator('[data-action="cheques.issue_code"]').click()
    issued = page.locator('[data-role="issued-code"]')
    expect(issued).to_contain_text(ACME.account_id, timeout=15_000)
    match = re.search(r"\b(\d{8})\b", issued.inner_text())
    assert match, issued.inner_text()

    display = console.context.new_page()
    # Every frame the display is pushed: none may carry the photo (or any data: URL).
    frames: list[str] = []
    display.on(
        "websocket",
        lambda ws: ws.on(
            "framereceived", lambda f: frames.append(f if isinstance(f, str) else f.decode())
        ),
    )
    photo_fetches: list[tuple[int, str]] = []
    display.on(
        "response",
        lambda r: (
            photo_fetches.append((r.status, r.headers.get("content-type", "")))
            if "/display/photos/" in r.url
            else None
        ),
    )
    opened = display.goto(branch.console_url + "display")
    assert opened is not None
    policy = opened.headers["content-security-policy"]
    assert "img-src 'self';" in policy and "data:" not in policy
    expect(display.locator('[data-role="idle"]')).to_be_visible(timeout=15_000)

    pid = str(uuid.uuid4())
    terminal = branch.terminal
    started = terminal.cheque(
        "cheque_start",
        purchase_id=pid,
        purchase_code=cpb.PurchaseCodeMethod(
            account_number=ACME.account_number, purchase_code=match.group(1)
        ),
    )
    assert not started.code, started
    assert not terminal.cheque("cheque_id_card", purchase_id=pid, id_card=good_card()).code
    expect(display.locator('[data-role="idle"]')).to_be_visible()  # not before the face
    faced = terminal.cheque("cheque_face", purchase_id=pid, capture=capture("live", "obama", 1))
    assert faced.purchase.state == cpb.CHEQUE_STATE_IDENTIFIED, faced

    shown = display.locator(f'[data-purchase="{pid}"]')
    expect(shown.locator('[data-role="buyer"]')).to_have_text("Barack Obama", timeout=10_000)
    expect(shown.locator('[data-role="id-number"]')).to_have_text(
        OBAMA_ID[:6] + "********" + OBAMA_ID[-4:]
    )
    expect(shown.locator('[data-role="contact"]')).to_have_text("Li Na 010-5555-0101")
    expect(shown.locator('[data-role="company"]')).to_have_text("Acme Trading Co")
    # The card photo, loaded from the console's route (the state names it, never carries it).
    photo = shown.locator('[data-role="photo"]')
    expect(photo).to_have_attribute("src", f"/display/photos/{pid}")
    display.wait_for_function(
        "document.querySelector('[data-role=\"photo\"]')?.naturalWidth > 0", timeout=10_000
    )
    assert photo.evaluate("img => img.complete && img.naturalHeight") > 0
    assert OBAMA_ID not in display.content()

    ordered = terminal.cheque(
        "cheque_order", purchase_id=pid, lines=[cpb.OrderLine(book_type="transfer_cheque", books=1)]
    )
    assert ordered.purchase.state == cpb.CHEQUE_STATE_ORDERED, ordered
    expect(shown.locator('[data-role="first"]')).to_have_text("1010000001", timeout=10_000)
    expect(shown.locator('[data-role="last"]')).to_have_text("1010000025")
    expect(shown.locator('[data-role="fee"]')).to_have_text("15.00 CNY")
    expect(stock.locator('[data-role="books-free"]')).to_have_text("3", timeout=10_000)
    display.screenshot(path=str(console_shot(request.node.name)))
    states = [f for f in frames if '"type": "state"' in f or '"type":"state"' in f]
    assert any(pid in f for f in states)
    assert not [f[:200] for f in states if "data:" in f or "base64" in f]
    # Fetched once, as a JPEG, though the display was pushed again (the order): the <img>
    # is kept across renders, so the server audits one photo handed out, not one per push.
    assert photo_fetches == [(200, "image/jpeg")]
    expect(photo).to_have_attribute("src", f"/display/photos/{pid}")
    console.close()


def console_shot(name: str) -> Path:
    from tests.browser.console_support import SCREENSHOTS

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}-display.png"


def test_an_overlapping_range_is_refused_by_name(
    browser: Browser, branch: Branch, request: pytest.FixtureRequest
) -> None:
    console = Console(browser, branch.console_url, request.node.name)
    page = cheques_screen(console)
    page.select_option("#cq-terminal", branch.stack.terminal_id)
    page.select_option("#cq-book-type", "cash_cheque")
    page.fill("#cq-first", "20000001")
    page.fill("#cq-last", "20000050")
    page.locator('[data-action="cheques.load"]').click()
    expect(page.locator('[data-part="stock"] tr', has_text="2020000001")).to_be_visible(
        timeout=15_000
    )
    page.fill("#cq-first", "20000040")
    page.fill("#cq-last", "20000060")
    page.locator('[data-action="cheques.load"]').click()
    error = page.locator('[data-role="error"]')
    expect(error).to_have_attribute("data-reason", "range_overlap", timeout=10_000)
    expect(error).to_be_visible()
    console.close()
