"""Issue 16 acceptance, jobs from the customer's phone, with real processes (server with the
HSM, simulator, agent with its kiosk page, the phone gateway) and Chromium: the kiosk's QR
decoded from a screenshot (zxing-cpp) and opened in a phone-sized context; a withdrawal
signed in at the bank (password + TOTP) that releases nothing until confirmed on the
terminal's screen, carried to posting; a deposit signed in at the terminal (card + PIN on
the kiosk) carried to posting; the phone sees each receipt reference; a withdrawal canceled
on the terminal's confirm screen releases nothing. Also: a job POST without the CSRF token
is refused, a bank login locks after repeated failures; a statement viewed on the phone and
one printed at the terminal; a video-teller request whose queue position the phone follows
as the call ahead is answered; a withdrawal whose rate changed after the phone's quote is
confirmed again at the new rate; a cheque book ordered on the phone and bought at the
terminal through the cheque sale (ID card, face, fee once, serials issued)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image
from playwright.sync_api import Browser, expect

from branchline.server import pki
from branchline.server.mobile import bank_auth
from branchline.v1 import calls_pb2
from tests.browser.back_office import (
    Carriers,
    back_office_counts,
    back_office_sends,
    newest_txn,
    open_txns,
    teller,
    wait_door_open,
)
from tests.browser.cheque_support import (
    ACCOUNT,
    FEE,
    at,
    identify,
    order_and_take,
    purchase_count,
)
from tests.browser.kiosk_support import Kiosk, KioskBranch
from tests.browser.media_support import add_video_teller, media_browser
from tests.browser.phone_jobs_support import (
    GATEWAY,
    PASSWORD,
    bank_login,
    end_bank_session,
    finish_tube,
    job_id,
    job_state,
    phone_branch,
    recordings_answer,
    scan,
    sign_in_at_the_bank,
    totp,
    unpair,
    watch_recording,
)
from tests.integration.calls_support import connected, local, request, start_agent
from tests.integration.pin_support import PIN
from tests.integration.stack import wait_for
from tests.integration.tube_support import (
    BRANCH,
    balances,
    ledger,
    station_loaded,
    tube_rates_version,
)

pytestmark = pytest.mark.timeout(300)
KIOSK: dict[str, float | str] = {"language": "en", "inactivity_timeout": 120}
CARRIERS = Carriers(next_id=700)


# One branch for the module (the tests share its processes; each ends on attract, unpaired).
@pytest.fixture(scope="module")
def branch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KioskBranch]:
    with phone_branch(tmp_path_factory.mktemp("phone-logs"), **KIOSK) as started:
        yield started


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium with a fake camera: the kiosk page records tube transactions."""
    with media_browser() as chromium:
        yield chromium


# long: one customer's withdrawal from the phone to the posting, every step in order
def test_withdrawal_signed_in_at_the_bank_and_confirmed_at_the_terminal(
    kiosk: Kiosk, browser: Browser, tmp_path: Path
) -> None:
    stack = kiosk.stack
    before = balances(stack)
    phone = scan(kiosk, browser, tmp_path)
    # Without the CSRF token a job is refused.
    refused = phone.request.post(
        GATEWAY["url"] + "/api/jobs",
        data={"idempotency_key": "no-csrf-0001", "service": "video_teller", "auth": "bank"},
        headers={"Origin": GATEWAY["url"]},
    )
    assert refused.status == 403 and refused.json()["error"] == "csrf"

    sign_in_at_the_bank(phone, "C-1", "tube_withdrawal")
    phone.locator("#job-account_id").select_option("C1-CNY")
    phone.locator("#job-currency").fill("CNY")
    phone.locator("#job-amount").fill("120.00")
    phone.locator('[data-action="submit"]').click()
    wait_for(lambda: job_state(phone) in ("ready", "received"), 10, "the job on the terminal")

    ready = kiosk.wait_screen("phone_job", timeout=10)
    assert ready["auth"] == "bank" and ready["amount"] == "120.00"
    kiosk.click("start")
    confirm = kiosk.wait_screen("phone_job_confirm", timeout=10)
    assert confirm["account_id_used"] == "C1-CNY"
    # The service in words, not its message key.
    assert "Withdrawal (tube)" in kiosk.text() and "service." not in kiosk.text()
    wait_for(lambda: job_state(phone) == "confirming", 10, "the phone to say: confirm there")
    # Nothing is released before the confirmation on the terminal's screen.
    assert open_txns(stack, "open") == []
    kiosk.click("confirm")
    kiosk.wait_screen("tube", until=lambda d: d.get("kind") == "withdrawal")
    txn = newest_txn(stack, "open")
    back_office_sends(stack, txn["txn_id"], CARRIERS.take())
    wait_door_open(stack)
    kiosk.wait_screen("tube", until=lambda d: d.get("step") == "take_carrier")
    stack.sim_act("tube_station", "remove")
    kiosk.wait_screen("tube", until=lambda d: d.get("step") == "confirm_receipt")
    kiosk.click("confirm_receipt")
    reference = finish_tube(kiosk)
    wait_for(lambda: job_state(phone) == "done", 15, "the phone to see the job done")
    receipt = phone.locator('[data-role="job-state"]').get_attribute("data-receipt")
    assert receipt and receipt == reference
    assert balances(stack)["C1-CNY"] - before["C1-CNY"] == Decimal("-120.00")
    # The transaction's recording, watched on the phone by the customer signed in at the bank;
    # once someone else signs in on this phone, refused.
    watch_recording(phone, stack)
    job = job_id(phone)
    other = bank_login(phone, "C-2", PASSWORD, totp("C-2"))
    assert other.status == 200, other.text()
    assert recordings_answer(phone, job) == (403, "own_recordings_only")
    kiosk.page.locator('[data-action="finish"]').click()
    kiosk.wait_screen("attract", timeout=30)
    unpair(kiosk, phone)


# long: one customer's deposit from the phone to the posting, every step in order
def test_deposit_signed_in_at_the_terminal_with_card_and_pin(
    kiosk: Kiosk, browser: Browser, tmp_path: Path
) -> None:
    stack = kiosk.stack
    before = balances(stack)
    phone = scan(kiosk, browser, tmp_path)
    phone.locator('[data-service="tube_deposit"] button').click()
    phone.locator("#auth-terminal").check()
    phone.locator("#job-asset_kind").select_option("cash")
    phone.locator("#job-currency").fill("CNY")
    phone.locator("#job-amount").fill("250.00")
    phone.locator('[data-action="submit"]').click()
    kiosk.wait_screen("phone_job", timeout=10)
    kiosk.click("start")
    kiosk.wait_screen("card")
    kiosk.insert_card()
    kiosk.type_pin(PIN)
    kiosk.wait_screen("tube", until=lambda d: d.get("step") == "load_carrier", timeout=20)
    stack.sim_act("tube_station", "load", carrier_id=str(CARRIERS.take()))
    wait_for(lambda: station_loaded(stack), 10, "the agent to see the carrier")
    kiosk.click("send")
    back_office_counts(stack, "cash", "CNY", "250.00")
    kiosk.wait_screen("tube", timeout=30, until=lambda d: d.get("step") == "decide")
    kiosk.click("confirm")
    reference = finish_tube(kiosk)
    wait_for(lambda: job_state(phone) == "done", 15, "the phone to see the job done")
    assert phone.locator('[data-role="job-state"]').get_attribute("data-receipt") == reference
    assert balances(stack)["C1-CNY"] - before["C1-CNY"] == Decimal("250.00")
    # The card customer's recording, on the phone that ordered the job; another phone paired
    # later does not find the job at all.
    watch_recording(phone, stack)
    job = job_id(phone)
    kiosk.finish()
    unpair(kiosk, phone)
    stranger = scan(kiosk, browser, tmp_path)
    assert recordings_answer(stranger, job) == (404, "not_found")
    unpair(kiosk, stranger)


def test_value_out_canceled_at_the_terminal_releases_nothing(
    kiosk: Kiosk, browser: Browser, tmp_path: Path
) -> None:
    stack = kiosk.stack
    before = balances(stack)
    phone = scan(kiosk, browser, tmp_path)
    sign_in_at_the_bank(phone, "C-2", "tube_withdrawal")
    phone.locator("#job-account_id").select_option("C2-CNY")
    phone.locator("#job-currency").fill("CNY")
    phone.locator("#job-amount").fill("40")
    phone.locator('[data-action="submit"]').click()
    kiosk.wait_screen("phone_job", timeout=10)
    kiosk.click("start")
    kiosk.wait_screen("phone_job_confirm", timeout=10)
    kiosk.click("cancel")
    wait_for(lambda: job_state(phone) == "canceled", 10, "the phone to see the job canceled")
    kiosk.wait_screen("attract", timeout=30)
    assert open_txns(stack, "open") == []
    assert balances(stack) == before
    unpair(kiosk, phone)


def test_bank_login_locks_after_repeated_failures(
    kiosk: Kiosk, browser: Browser, tmp_path: Path
) -> None:
    phone = scan(kiosk, browser, tmp_path)
    phone.locator('[data-service="video_teller"] button').click()
    phone.locator("#auth-bank").check()
    csrf = phone.request.get(GATEWAY["url"] + "/api/pairing").json()["csrf_token"]
    answers = []
    for _ in range(bank_auth.MAX_FAILURES + 1):
        answer = phone.request.post(
            GATEWAY["url"] + "/api/login",
            data={"customer_id": "C-2", "password": "not it at all", "totp": "123456"},
            headers={"Origin": GATEWAY["url"], "X-CSRF-Token": csrf},
        )
        answers.append((answer.status, answer.json()["error"]))
    assert answers[0] == (403, "login_failed")
    assert answers[-1] == (403, "login_locked")
    right = phone.request.post(
        GATEWAY["url"] + "/api/login",
        data={"customer_id": "C-2", "password": PASSWORD, "totp": totp("C-2")},
        headers={"Origin": GATEWAY["url"], "X-CSRF-Token": csrf},
    )
    assert (right.status, right.json()["error"]) == (403, "login_locked")
    phone.locator('[data-action="cancel"]').click()
    offered = kiosk.wait_screen(
        "attract", timeout=10, until=lambda d: (d.get("phone") or {}).get("state") == "offering"
    )
    assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}", offered["phone"]["short_code"])
    phone.context.close()


# long: two jobs from one phone, each to its end on both screens
def test_statement_viewed_on_the_phone_and_printed_at_the_terminal(
    kiosk: Kiosk, browser: Browser, tmp_path: Path
) -> None:
    stack = kiosk.stack
    phone = scan(kiosk, browser, tmp_path)
    today = date.today()
    period = ((today - timedelta(days=30)).isoformat(), today.isoformat())
    sign_in_at_the_bank(phone, "C-1", "statement_view")
    phone.locator("#job-account_id").select_option("C1-CNY")
    phone.locator("#job-period_from").fill(period[0])
    phone.locator("#job-period_to").fill(period[1])
    phone.locator('[data-action="submit"]').click()
    kiosk.wait_screen("phone_job", timeout=10)
    kiosk.click("start")
    wait_for(lambda: job_state(phone) == "done", 15, "the statement on the phone")
    lines = phone.locator('[data-role="statement"] li')
    expect(lines.first).to_be_visible()
    texts = lines.all_inner_texts()
    # The account's opening deposit (tube_support), dated within the period asked for.
    assert any("5000.00" in line for line in texts), texts
    assert all(period[0] <= line.split(" ", 1)[0] <= period[1] for line in texts), texts
    end_bank_session(kiosk)

    printed = set((stack.sim_dir / "printer").glob("receipt-*.png"))
    phone.locator('[data-service="statement_print"] button').click()
    phone.locator("#auth-bank").check()
    phone.locator("#job-account_id").fill("C1-CNY")
    phone.locator("#job-period_from").fill(period[0])
    phone.locator("#job-period_to").fill(period[1])
    phone.locator('[data-action="submit"]').click()
    kiosk.wait_screen("phone_job", timeout=10)
    kiosk.click("start")
    shown = kiosk.wait_screen("statement", timeout=30, until=lambda d: bool(d.get("printed")))
    wait_for(lambda: job_state(phone) == "done", 15, "the phone to see the print done")
    reference = phone.locator('[data-role="job-state"]').get_attribute("data-receipt")
    assert reference == shown["printed"] and str(reference).startswith("BLST:")

    def new_receipt() -> Path | None:
        found = sorted(set((stack.sim_dir / "printer").glob("receipt-*.png")) - printed)
        return found[-1] if found else None

    png = wait_for(new_receipt, 20, "the statement on the simulator's printer")
    codes = wait_for(lambda: [r.text for r in zxingcpp.read_barcodes(Image.open(png))], 5, "QR")
    assert reference in codes
    kiosk.click("back")
    end_bank_session(kiosk)
    unpair(kiosk, phone)


# long: a second terminal's call ahead, the teller coming on duty and taking both calls
def test_video_teller_queue_position_followed_on_the_phone(
    kiosk: Kiosk, browser: Browser, tmp_path: Path
) -> None:
    stack = kiosk.stack
    add_video_teller(stack, "VT1", ("loan",))
    pki.issue_terminal_cert(stack.pki, "K-2")
    other = start_agent(stack, "K-2", (), branch=BRANCH)
    try:
        wait_for(lambda: connected(local(stack, "K-2")), 30, "K-2 connected")
        ahead = request(stack, "K-2")
        assert (ahead.state, ahead.position) == (calls_pb2.CALL_STATE_QUEUED, 1)
        phone = scan(kiosk, browser, tmp_path)
        sign_in_at_the_bank(phone, "C-1", "video_teller")
        phone.locator("#job-business_type").select_option("loan")
        phone.locator('[data-action="submit"]').click()
        kiosk.wait_screen("phone_job", timeout=10)
        kiosk.click("start")
        kiosk.wait_screen("video", timeout=15, until=lambda d: d.get("position") == 2)
        status = phone.locator('[data-role="job-state"]')
        expect(status).to_have_attribute("data-queue", "2", timeout=10_000)
        assert job_state(phone) == "running"
        # The teller comes on duty and takes the call ahead: this one moves up to 1.
        teller(stack, "duty", "on", who="VT1")
        current = teller(stack, "call", "current", "--wait", "10", who="VT1")
        assert current["call_id"] == ahead.call_id
        expect(status).to_have_attribute("data-queue", "1", timeout=10_000)
        assert job_state(phone) == "running"
        teller(stack, "call", "answer", who="VT1")
        teller(stack, "call", "end", ahead.call_id, who="VT1")
        # The teller takes this call next: the job is done.
        wait_for(lambda: job_state(phone) == "done", 15, "the phone to see the call taken")
        kiosk.wait_screen("video", until=lambda d: d.get("state") in ("connecting", "connected"))
        kiosk.click("leave" if kiosk.data().get("state") == "connecting" else "hangup")
        kiosk.wait_screen("video", until=lambda d: d.get("state") == "ended")
        teller(stack, "duty", "off", who="VT1")
        kiosk.click("back")
        end_bank_session(kiosk)
        unpair(kiosk, phone)
    finally:
        other.stop()


# long: the rates move twice, once before the terminal's confirm screen and once on it
def test_withdrawal_rate_changed_after_the_phone_quote_is_confirmed_again(
    kiosk: Kiosk, browser: Browser, tmp_path: Path
) -> None:
    stack = kiosk.stack
    before = balances(stack)
    phone = scan(kiosk, browser, tmp_path)
    # C-1: the lockout test above locked C-2 out for a while.
    sign_in_at_the_bank(phone, "C-1", "tube_withdrawal")
    phone.locator("#job-account_id").select_option("C1-CNY")
    phone.locator("#job-currency").fill("USD")
    phone.locator("#job-amount").fill("10")
    quote = phone.locator('[data-role="quote"]')
    expect(quote).to_have_attribute("data-rate-version", re.compile(r"^[1-9][0-9]*$"))
    quoted = int(quote.get_attribute("data-rate-version") or 0)
    # The bank's rates move after the phone's quote.
    ledger(stack, "rates", "--set", "USD=7.30:7.40", "XAU=540.50:548.00")
    wait_for(lambda: tube_rates_version(stack) > quoted, 10, "the new rates at the terminal")
    phone.locator('[data-action="submit"]').click()
    kiosk.wait_screen("phone_job", timeout=10)
    kiosk.click("start")
    confirm = kiosk.wait_screen("phone_job_confirm", timeout=10)
    assert confirm["rate_changed"] is True and confirm["quoted_rate_version"] == quoted
    assert confirm["rate_version"] > quoted and confirm["rate"] == "7.4"
    expect(kiosk.page.locator('[data-role="rate-changed"]')).to_be_visible()
    # They move again while the screen is up: that confirmation is refused, the new rate shown.
    shown = confirm["rate_version"]
    ledger(stack, "rates", "--set", "USD=7.50:7.60", "XAU=540.50:548.00")
    wait_for(lambda: tube_rates_version(stack) > shown, 10, "the newer rates at the terminal")
    kiosk.click("confirm")
    again = kiosk.wait_screen(
        "phone_job_confirm", until=lambda d: d.get("rate_version", 0) > shown, timeout=10
    )
    assert again["rate"] == "7.6" and again["rate_changed"] is True
    # Told in the catalogue's words, not the engine's English with its field name.
    refusal = kiosk.page.locator('[data-role="error"]')
    expect(refusal).to_have_text("The rates changed: check the new rate, then confirm.")
    assert "rate_version" not in (kiosk.page.locator("main").inner_text())
    assert open_txns(stack, "open") == []
    kiosk.click("cancel")
    wait_for(lambda: job_state(phone) == "canceled", 10, "the phone to see the job canceled")
    kiosk.wait_screen("attract", timeout=30)
    assert balances(stack) == before
    unpair(kiosk, phone)


# long: the phone's order through every step of the cheque sale at the terminal
def test_cheque_book_ordered_on_the_phone_bought_at_the_terminal(
    kiosk: Kiosk, browser: Browser, tmp_path: Path
) -> None:
    stack = kiosk.stack
    before = balances(stack)[ACCOUNT]
    phone = scan(kiosk, browser, tmp_path)
    phone.locator('[data-service="cheque_book"] button').click()
    phone.locator("#auth-terminal").check()
    phone.locator("#job-account_id").fill(ACCOUNT)
    phone.locator("#job-cheque_leaves").select_option("25")
    phone.locator('[data-action="submit"]').click()
    ready = kiosk.wait_screen("phone_job", timeout=10)
    assert ready["service"] == "cheque_book" and ready["cheque_leaves"] == 25
    kiosk.click("start")
    kiosk.wait_screen("card")
    kiosk.insert_card()
    kiosk.type_pin(PIN)
    confirm = kiosk.wait_screen("phone_job_confirm", timeout=20)
    assert confirm["account_id_used"] == ACCOUNT
    wait_for(lambda: job_state(phone) == "confirming", 10, "the phone to say: confirm there")
    # Value out: no purchase before the customer confirms on the terminal.
    assert purchase_count(stack) == 0
    kiosk.click("confirm")
    # The sale's own checks: the registered purchaser's ID card and face.
    identify(kiosk)
    order = kiosk.wait_screen("cheque", until=at("order"))
    assert order["prefill"] == {"transfer_cheque": 1}
    expect(kiosk.page.locator('input[data-book-type="transfer_cheque"]')).to_have_value("1")
    done = order_and_take(kiosk)  # 25 serials printed in order and issued, the fee posted
    wait_for(lambda: job_state(phone) == "done", 15, "the phone to see the book bought")
    receipt = phone.locator('[data-role="job-state"]').get_attribute("data-receipt")
    assert receipt == done["reference"] and str(receipt).startswith("BLCQ:")
    assert purchase_count(stack) == 1
    assert balances(stack)[ACCOUNT] == before - FEE  # the fee, once
    kiosk.finish()
    unpair(kiosk, phone)
