"""Issue 15 acceptance on the customer's screen: a cheque book bought by purchase code and
one by card + PIN, through the kiosk page in Chromium with real processes (server with the
cheques capability, the simulator's ID reader, face module and IPP cheque printer, the
agent). Each prints a book whose rendered leaves (the simulator's PNGs) carry the allocated
numbers in order — read back from each leaf's Code 39 barcode — and posts the fee once;
a face that is not the purchaser's is refused naming the rule, in the customer's language.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.cheque_support import (
    ACCOUNT,
    CHEQUE_DEVICES,
    COMPANY,
    issue_code,
    last_job,
    printed_numbers,
    purchase_row,
    seed_cheques,
    serial_states,
    take_book_when_presented,
)
from tests.browser.console_support import console_process
from tests.browser.kiosk_support import SCREENSHOTS, Kiosk, KioskBranch, kiosk_branch
from tests.integration.tube_support import balances

FEE = Decimal("15.00")  # transfer cheque: printing 10.00 + handling 5.00 per book


@pytest.fixture(scope="module")
def branch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KioskBranch]:
    logs = tmp_path_factory.mktemp("cheque-logs")
    with kiosk_branch(
        logs,
        customer_timeout=90,
        extra_devices=CHEQUE_DEVICES,
        language="en",
        inactivity_timeout=120,
    ) as started:
        stack = started.stack
        seed_cheques(stack)
        stack.sim_act("cheque_printer", "set_leaf_time", seconds="0.01")
        stack.sim_act("id_reader", "place", card="valid")
        yield started


def at(step: str) -> Any:
    return lambda d: d.get("step") == step and not d.get("finished")


def identify(kiosk: Kiosk, other_face_first: bool = False) -> None:
    """On the purchase screen: the ID card, then the face (optionally someone else's first)."""
    stack = kiosk.stack
    started = kiosk.wait_screen("cheque", until=at("id"), shot="cheque-id")
    # The kiosk camera records the purchase (issue 14) from its first screen.
    assert started["record"] == {
        "txn_ref": started["purchase_id"],
        "kind": "cheque",
        "source": "kiosk",
    }, started
    kiosk.click("read_id")
    kiosk.wait_screen("cheque", until=at("face"), shot="cheque-face")
    if other_face_first:
        stack.sim_act("face_camera", "present", scene="live", person="biden")
        kiosk.click("capture")
        refused = kiosk.wait_screen(
            "cheque", until=lambda d: d.get("code") == "no_match", shot="cheque-no-match"
        )
        assert refused["attempts_left"] == 2
        assert "does not match the registered buyer" in kiosk.text()
    stack.sim_act("face_camera", "present", scene="live", person="obama", index="0")
    kiosk.click("capture")


def order_and_take(kiosk: Kiosk, display: Page | None = None) -> dict[str, Any]:
    stack = kiosk.stack
    shown = kiosk.wait_screen("cheque", until=at("order"), shot="cheque-order")
    offers = {o["book_type"]: o for o in shown["offers"]}
    assert offers["transfer_cheque"]["refused_rule"] == ""
    since = last_job(stack)
    kiosk.page.locator('input[data-book-type="transfer_cheque"]').fill("1")
    kiosk.click("order")
    kiosk.wait_screen(
        "cheque", timeout=60, until=lambda d: d.get("step") in ("printing", "take", "result")
    )
    if display is not None:
        # The order on the counter screen: the book's numbers and the fee, live.
        ordered = kiosk.data()["books"][0] if kiosk.data().get("books") else None
        first_cell = display.locator('[data-role="order"] [data-role="first"]')
        expect(first_cell).to_have_count(1, timeout=15_000)
        if ordered:
            expect(first_cell).to_contain_text(ordered["first"][2:])
        display.screenshot(path=str(SCREENSHOTS / f"{kiosk.test_name}-display.png"))
    take_book_when_presented(stack)
    done = kiosk.wait_screen(
        "cheque", timeout=60, until=lambda d: bool(d.get("finished")), shot="cheque-done"
    )
    assert done["outcome"] == "completed", done
    assert done["record"] is None  # the purchase ended: the recording is closed
    assert done["reference"].startswith("BLCQ:") and done["reference"] in kiosk.text()
    book = done["books"][0]
    first, last = int(book["first"][2:]), int(book["last"][2:])
    numbers = [f"10{s:08d}" for s in range(first, last + 1)]
    assert len(numbers) == 25
    # The paper shows the allocated numbers, in order, once each.
    assert printed_numbers(stack, since) == numbers
    states = serial_states(stack, done["purchase_id"])
    assert states == {n: "issued" for n in numbers}
    row = purchase_row(stack, done["purchase_id"])
    assert row["state"] == "completed" and row["fee_entry_id"] and not row["refund_entry_id"]
    kiosk.click("done")
    return done


@pytest.fixture(scope="module")
def display_url(branch: KioskBranch) -> Iterator[str]:
    """The staff console of the branch's back office (BO-1), whose /display is the counter
    screen."""
    with console_process(branch.stack, "teller:BO-1") as url:
        yield url + "display"


def test_purchase_by_code(kiosk: Kiosk, display_url: str) -> None:
    stack = kiosk.stack
    code = issue_code(stack)
    # The branch display, in a second page of the same browser.
    display = kiosk.page.context.new_page()
    display.goto(display_url)
    expect(display.locator('[data-role="idle"]')).to_be_visible(timeout=15_000)
    before = balances(stack)[ACCOUNT]
    kiosk.wait_screen("attract")
    kiosk.click("start", service="cheque")
    kiosk.wait_screen("cheque_method", shot="cheque-method")
    kiosk.click("method", method="code")
    kiosk.wait_screen("cheque_code")
    kiosk.fill("account_number", "6222020200112233")
    kiosk.fill("purchase_code", code)
    kiosk.click("submit")
    identify(kiosk, other_face_first=True)
    # Identity passed: the display shows the buyer (masked ID number) and the contact.
    shown = display.locator("[data-purchase]")
    expect(shown.locator('[data-role="buyer"]')).to_have_text(
        COMPANY.purchaser_name, timeout=15_000
    )
    expect(shown.locator('[data-role="contact"]')).to_contain_text(COMPANY.contact_name)
    masked = shown.locator('[data-role="id-number"]').inner_text()
    assert masked != COMPANY.purchaser_id_number and masked.endswith(
        COMPANY.purchaser_id_number[-4:]
    )
    done = order_and_take(kiosk, display)
    assert COMPANY.purchaser_id_number not in display.content()
    assert done["outcome"] == "completed"
    display.close()
    assert balances(stack)[ACCOUNT] == before - FEE
    kiosk.back_to_attract()


def test_used_code_is_refused_by_name(kiosk: Kiosk) -> None:
    stack = kiosk.stack
    code = issue_code(stack)
    for attempt in range(2):
        kiosk.wait_screen("attract")
        kiosk.click("start", service="cheque")
        kiosk.wait_screen("cheque_method")
        kiosk.click("method", method="code")
        kiosk.wait_screen("cheque_code")
        kiosk.fill("account_number", "6222020200112233")
        kiosk.fill("purchase_code", code)
        kiosk.click("submit")
        if attempt == 0:
            kiosk.wait_screen("cheque", until=at("id"))
            kiosk.click("cancel")
        else:
            done = kiosk.wait_screen("cheque", until=lambda d: bool(d.get("finished")))
            assert (done["outcome"], done["code"]) == ("refused", "purchase_code_used")
            assert "already been used" in kiosk.text()
        kiosk.wait_screen("cheque", until=lambda d: bool(d.get("finished")))
        kiosk.click("done")
        kiosk.back_to_attract()


def test_purchase_by_card_and_pin(kiosk: Kiosk) -> None:
    stack = kiosk.stack
    before = balances(stack)[ACCOUNT]
    kiosk.wait_screen("attract")
    kiosk.click("start", service="cheque")
    kiosk.wait_screen("cheque_method")
    kiosk.click("method", method="card")
    kiosk.wait_screen("card")
    kiosk.insert_card()
    from tests.integration.test_pin_verification import PIN

    kiosk.type_pin(PIN)
    kiosk.wait_screen("cheque_method", until=lambda d: bool(d.get("signed_in")))
    kiosk.fill("account_id", ACCOUNT)
    kiosk.click("start")
    identify(kiosk)
    order_and_take(kiosk)
    assert balances(stack)[ACCOUNT] == before - FEE
    kiosk.wait_screen("menu")
    kiosk.finish()
