"""Issue 15 acceptance on the customer's screen: a cheque book bought by purchase code and
one by card + PIN, through the kiosk page in Chromium with real processes (server with the
cheques capability, the simulator's ID reader, face module and IPP cheque printer, the
agent). Each prints a book whose rendered leaves (the simulator's PNGs) carry the allocated
numbers in order — read back from each leaf's Code 39 barcode — and posts the fee once;
a face that is not the purchaser's is refused naming the rule, in the customer's language.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.browser.cheque_support import (
    ACCOUNT,
    CHEQUE_DEVICES,
    COMPANY,
    FEE,
    at,
    identify,
    issue_code,
    order_and_take,
    seed_cheques,
)
from tests.browser.console_support import console_process
from tests.browser.kiosk_support import Kiosk, KioskBranch, kiosk_branch
from tests.integration.tube_support import balances


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
    from tests.integration.pin_support import PIN

    kiosk.type_pin(PIN)
    kiosk.wait_screen("cheque_method", until=lambda d: bool(d.get("signed_in")))
    kiosk.fill("account_id", ACCOUNT)
    kiosk.click("start")
    identify(kiosk)
    order_and_take(kiosk)
    assert balances(stack)[ACCOUNT] == before - FEE
    kiosk.wait_screen("menu")
    kiosk.finish()
