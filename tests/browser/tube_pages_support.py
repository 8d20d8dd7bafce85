"""The tube in the browser tests, step by step on the pages: the customer's deposit form, the
carrier loaded and sent, the result screen (the kiosk page), and the back-office clerk
receiving and counting the carrier (the staff console)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from tests.browser.back_office import Carriers, station_status
from tests.browser.console_support import Console, newest_carrier
from tests.browser.kiosk_support import Kiosk
from tests.integration.stack import wait_for
from tests.integration.tube_support import station_loaded

# One sequence of carrier numbers for every test that loads or sends a carrier.
CARRIERS = Carriers()


def amount_in(text: str) -> Decimal:
    """The number in a formatted amount ("CNY 1,234.50", "¥1,234.50", "US$50.00")."""
    found = re.search(r"-?[\d,]+(?:\.\d+)?", text)
    assert found, text
    return Decimal(found.group(0).replace(",", ""))


def tube_step(step: str) -> Any:
    return lambda d: d.get("step") == step and not d.get("finished")


def fill_deposit(kiosk: Kiosk, account: str, currency: str, amount: str) -> None:
    kiosk.wait_screen("deposit_form")
    kiosk.fill("kind", "cash")
    kiosk.fill("account_id", account)
    kiosk.fill("currency", currency)
    kiosk.fill("amount", amount)
    kiosk.click("submit")


def load_and_send(kiosk: Kiosk) -> None:
    """The customer puts the carrier in the station and presses Send on the screen."""
    kiosk.wait_screen("tube", until=tube_step("load_carrier"), shot="tube-load_carrier")
    kiosk.stack.sim_act("tube_station", "load", carrier_id=str(CARRIERS.take()))
    wait_for(lambda: station_loaded(kiosk.stack), 10, "the agent to see the carrier")
    kiosk.click("send")


def finish_tube(kiosk: Kiosk, outcome: str) -> dict[str, Any]:
    done = kiosk.wait_screen(
        "tube", timeout=60, until=lambda d: bool(d.get("finished")), shot=f"tube-{outcome}"
    )
    assert done["outcome"] == outcome, done
    assert done["reference"] and done["reference"] in kiosk.text()
    kiosk.click("done")
    return done


def carrier_arrives(kiosk: Kiosk, clerk: Console) -> str:
    """The carrier shows on the console as it travels; the clerk takes it out and receives it."""
    txn = newest_carrier(clerk, "in_transit")
    row = clerk.row(txn["txn_id"], "in_transit")
    assert txn["pan_masked"] in row.inner_text() and txn["terminal_id"] in row.inner_text()
    assert "*" in txn["pan_masked"]
    wait_for(
        lambda: station_status(kiosk.stack).get("backoffice_state") == "arrived",
        20,
        "the carrier at the back office",
    )
    clerk.shot("arrived")
    row.locator('[data-action="backoffice.receive"]').click()
    clerk.row(txn["txn_id"], "received")
    kiosk.stack.sim_act("tube_station", "backoffice_remove")
    return str(txn["txn_id"])


def count_notes(clerk: Console, txn_id: str, notes: dict[str, str], total: str) -> None:
    clerk.row(txn_id).locator('[data-action="open_count"]').click()
    form = clerk.page.locator(f'form[data-form="count"][data-txn="{txn_id}"]')
    for value, how_many in notes.items():
        form.locator(f'input[name="denominations.{value}"]').fill(how_many)
    form.locator('input[name="amount"]').fill(total)
    clerk.shot("count")
    form.locator('[data-action="backoffice.count"]').click()
