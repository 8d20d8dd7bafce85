"""Issue 12 acceptance, the tube on the customer's screen: a cash deposit confirmed and posted,
a disputed deposit with the carrier returned, a foreign-currency withdrawal posted at the
rate shown, the agent killed mid-withdrawal and the page back by itself on the recovered
transaction, and a jammed station taking the tube services off the attract screen.

The customer acts only through the page in Chromium and the simulator's hands (card, PIN
pad, loading and taking carriers); the back office through ``branchline-teller`` and the
simulator's back-office station. Balances are read from the ledger.
"""

from __future__ import annotations

import time
from decimal import Decimal

from tests.browser.back_office import (
    back_office_counts,
    back_office_sends,
    newest_txn,
    station_status,
    teller,
    wait_door_open,
)
from tests.browser.kiosk_support import Kiosk
from tests.browser.tube_pages_support import (
    CARRIERS,
    amount_in,
    fill_deposit,
    finish_tube,
    load_and_send,
    tube_step,
)
from tests.integration.stack import wait_for
from tests.integration.tube_support import balances, tidy_tube

KIOSK = {"language": "en", "inactivity_timeout": 60}
CUSTOMER_TIMEOUT = 60


def test_cash_deposit_confirmed_and_posted(kiosk: Kiosk) -> None:
    stack = kiosk.stack
    before = balances(stack)
    kiosk.sign_in("deposit")
    fill_deposit(kiosk, "C1-CNY", "CNY", "250.00")
    load_and_send(kiosk)
    kiosk.wait_screen("tube", until=lambda d: d.get("stage") != "awaiting_carrier", shot="sent")
    kiosk.check_both_languages()
    back_office_counts(stack, "cash", "CNY", "250.00", note="counted twice")
    counted = kiosk.wait_screen("tube", timeout=30, until=tube_step("decide"), shot="counted")
    assert amount_in(counted["counted"]) == Decimal("250.00")
    assert counted["counted"] in kiosk.text()
    kiosk.check_both_languages()
    kiosk.click("confirm")
    finish_tube(kiosk, "completed")
    kiosk.finish()
    assert balances(stack)["C1-CNY"] - before["C1-CNY"] == Decimal("250.00")


def test_disputed_deposit_comes_back_in_its_carrier(kiosk: Kiosk) -> None:
    stack = kiosk.stack
    before = balances(stack)
    kiosk.sign_in("deposit")
    fill_deposit(kiosk, "C1-CNY", "CNY", "500.00")
    load_and_send(kiosk)
    txn = back_office_counts(stack, "cash", "CNY", "300.00")
    counted = kiosk.wait_screen("tube", timeout=30, until=tube_step("decide"))
    assert amount_in(counted["counted"]) == Decimal("300.00")
    assert amount_in(counted["declared"]) == Decimal("500.00")
    kiosk.click("dispute_return")
    # The clerk sends the same carrier back; the customer takes it out when the door opens.
    wait_for(
        lambda: teller(stack, "tube", "show", txn["txn_id"])["state"] == "TUBE_STATE_DISPUTED",
        30,
        "the dispute at the server",
    )
    back_office_sends(stack, txn["txn_id"], int(txn["carrier_id"]))
    wait_door_open(stack)
    kiosk.wait_screen("tube", until=lambda d: d.get("step") == "take_carrier", shot="returned")
    stack.sim_act("tube_station", "remove")
    finish_tube(kiosk, "returned")
    kiosk.finish()
    assert balances(stack) == before


def test_foreign_currency_withdrawal_posted_at_the_rate_shown(kiosk: Kiosk) -> None:
    stack = kiosk.stack
    before = balances(stack)
    kiosk.sign_in("withdrawal")
    kiosk.wait_screen("withdrawal_form")
    kiosk.fill("account_id", "C1-CNY")
    kiosk.fill("currency", "USD")
    kiosk.fill("amount", "50.00")
    kiosk.click("quote")
    quote = kiosk.wait_screen("withdrawal_quote")
    assert quote["rate"] and quote["rate"] in kiosk.text()
    assert quote["equivalent"] in kiosk.text()
    kiosk.fill("receipt", "no")  # declined: the last screen must not tell them to take one
    shown_debit = amount_in(quote["equivalent"])
    assert shown_debit == Decimal("50.00") * Decimal("7.20")  # the USD ask: the bank sells
    kiosk.click("submit")
    waiting = kiosk.wait_screen("tube", until=lambda d: d.get("kind") == "withdrawal")
    assert not waiting["finished"]
    txn = newest_txn(stack, "open")
    record = teller(stack, "tube", "show", txn["txn_id"])
    # The rate the customer saw is the rate the bank holds for this withdrawal.
    assert str(record["quote"]["rate_version"]) == str(quote["rate_version"])
    assert Decimal(record["quote"]["rate"]) == Decimal(quote["rate"]) == Decimal("7.20")
    assert Decimal(record["quote"]["account_amount"]) == shown_debit
    back_office_sends(stack, txn["txn_id"], CARRIERS.take())
    wait_door_open(stack)
    kiosk.wait_screen("tube", until=lambda d: d.get("step") == "take_carrier", shot="arrived")
    stack.sim_act("tube_station", "remove")
    kiosk.wait_screen("tube", until=tube_step("confirm_receipt"))
    kiosk.click("confirm_receipt")
    done = kiosk.wait_screen("tube", timeout=60, until=lambda d: bool(d.get("finished")))
    assert done["receipt"] is False and "receipt" not in kiosk.text().lower(), kiosk.text()
    finish_tube(kiosk, "completed")
    kiosk.finish()
    assert balances(stack)["C1-CNY"] - before["C1-CNY"] == -shown_debit


def test_agent_killed_mid_withdrawal_page_comes_back_on_the_recovered_transaction(
    kiosk: Kiosk,
) -> None:
    stack = kiosk.stack
    before = balances(stack)
    kiosk.sign_in("withdrawal")
    kiosk.wait_screen("withdrawal_form")
    kiosk.fill("account_id", "C1-CNY")
    kiosk.fill("currency", "")  # the account's own currency
    kiosk.fill("amount", "120.00")
    kiosk.click("quote")
    kiosk.wait_screen("withdrawal_quote")
    kiosk.click("submit")
    kiosk.wait_screen("tube", until=lambda d: d.get("kind") == "withdrawal")
    txn = newest_txn(stack, "open")
    frames_before = len(kiosk.received.frames)
    states_before = len(kiosk.received.states())

    killed = time.monotonic()
    kiosk.branch.kill_agent()
    # While the agent is away the page says so in words, and keeps its screen: never blank.
    connection = kiosk.page.locator('[data-role="connection"][data-state="connecting"]')
    connection.wait_for(state="visible", timeout=5000)
    assert connection.inner_text().strip()
    assert kiosk.screen() == "tube"
    kiosk.shot("agent-away")
    kiosk.branch.start_agent()
    # The page, never reloaded, reconnects by itself and shows the recovered transaction.
    recovered = kiosk.wait_screen(
        "tube", timeout=30, until=lambda d: bool(d.get("recovered")), shot="recovered"
    )
    took = time.monotonic() - killed
    assert recovered["kind"] == "withdrawal" and not recovered["finished"]
    assert amount_in(recovered["declared"]) == Decimal("120.00")
    kiosk.wait_connected()
    newer = kiosk.received.states()[-1]
    assert len(kiosk.received.frames) > frames_before and newer["screen"] == "tube"
    # Never a stale screen in between: no attract offering services while it is in flight.
    between = [s["screen"] for s in kiosk.received.states()[states_before:]]
    assert set(between[: between.index("tube")]) <= {"resuming"}, between
    print(f"agent restart -> recovered screen on the page: {took:.1f} s")

    back_office_sends(stack, txn["txn_id"], CARRIERS.take())
    wait_door_open(stack)
    kiosk.wait_screen("tube", until=lambda d: d.get("step") == "take_carrier")
    stack.sim_act("tube_station", "remove")
    kiosk.wait_screen("tube", until=tube_step("confirm_receipt"))
    kiosk.click("confirm_receipt")
    finish_tube(kiosk, "completed")
    kiosk.back_to_attract()
    assert balances(stack)["C1-CNY"] - before["C1-CNY"] == Decimal("-120.00")


def test_jammed_station_takes_tube_services_off_the_attract_screen(kiosk: Kiosk) -> None:
    stack = kiosk.stack
    kiosk.wait_screen("attract")
    for service in ("deposit", "withdrawal"):
        assert kiosk.button("start", service=service).count() == 1
    # The line jams while the back office sends a carrier: it stops in the tube and both
    # stations' controllers report the jam (no command of the agent's is running).
    stack.sim_fault("tube_station", "jam", True)
    stack.sim_act("tube_station", "backoffice_send", carrier_id=str(CARRIERS.take()))
    try:
        wait_for(lambda: station_status(stack).get("terminal_fault") == "jam", 20, "the jam", 0.05)
        jammed = time.monotonic()
        for service in ("deposit", "withdrawal"):
            entry = kiosk.page.locator(f'[data-service="{service}"][data-available="false"]')
            entry.first.wait_for(state="attached", timeout=5000)
        assert time.monotonic() - jammed < 5
        kiosk.shot("attract-jammed")
        assert kiosk.button("start", service="deposit").count() == 0
        assert kiosk.button("start", service="withdrawal").count() == 0
        # What does not need the tube is still offered.
        assert kiosk.button("start", service="statement").count() == 1
    finally:
        stack.sim_fault("tube_station", "jam", False)
        stack.device_command("tube_station", "reset_fault")
        tidy_tube(stack)
    kiosk.button("start", service="deposit").wait_for(state="visible", timeout=15_000)
