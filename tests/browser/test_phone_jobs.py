"""Issue 16 acceptance, jobs from the customer's phone, with real processes (server with the
HSM, simulator, agent with its kiosk page, the phone gateway) and Chromium: the kiosk's QR
decoded from a screenshot (zxing-cpp) and opened in a phone-sized context; a withdrawal
signed in at the bank (password + TOTP) that releases nothing until confirmed on the
terminal's screen, carried to posting; a deposit signed in at the terminal (card + PIN on
the kiosk) carried to posting; the phone sees each receipt reference; a withdrawal canceled
on the terminal's confirm screen releases nothing. Also: a job POST without the CSRF token
is refused, a bank login locks after repeated failures."""

from __future__ import annotations

import base64
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import zxingcpp
from PIL import Image
from playwright.sync_api import Browser, Page

from branchline.server import pki
from branchline.server.mobile import bank_auth
from branchline.server.storage.engine import open_database
from tests.browser.back_office import (
    Carriers,
    back_office_counts,
    back_office_sends,
    newest_txn,
    open_txns,
    wait_door_open,
)
from tests.browser.kiosk_support import Kiosk, KioskBranch, kiosk_branch
from tests.integration.stack import wait_for
from tests.integration.test_pin_verification import PIN
from tests.integration.tube_support import balances, station_loaded

pytestmark = pytest.mark.timeout(300)
KIOSK = {"language": "en", "inactivity_timeout": 120}
PHONE = {"width": 390, "height": 844}
SECRET = base64.b32encode(b"branchline-phone-c1!").decode()
PASSWORD = "correct horse battery"
CARRIERS = Carriers(next_id=700)
GATEWAY: dict[str, Any] = {}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def branch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KioskBranch]:
    port = _free_port()
    url = f"https://127.0.0.1:{port}"
    logs = tmp_path_factory.mktemp("phone-logs")
    with kiosk_branch(logs, server_extra=("--mobile-url", url), **KIOSK) as started:  # type: ignore[arg-type]
        stack = started.stack
        pki.issue_user_cert(stack.pki, "mobile", "gw1")
        engine = open_database(f"sqlite:///{stack.root / 'server.db'}")
        bank_auth.enroll(engine, "C-1", PASSWORD, SECRET)
        bank_auth.enroll(engine, "C-2", PASSWORD, SECRET)
        engine.dispose()
        log = open(stack.root / "gateway.log", "wb")  # noqa: SIM115 - the child writes to it
        gateway = subprocess.Popen(
            [
                sys.executable, "-m", "branchline.server.mobile_gateway.main",
                "--tls-dir", str(stack.pki), "--name", "gw1",
                "--listen", f"127.0.0.1:{port}", "--server", f"127.0.0.1:{stack.server_port}",
            ],
            stdout=log, stderr=subprocess.STDOUT, cwd=stack.root,
        )  # fmt: skip
        GATEWAY.update(url=url, proc=gateway)
        try:
            yield started
        finally:
            gateway.terminate()
            gateway.wait(10)
            (logs / "gateway.log").write_bytes((stack.root / "gateway.log").read_bytes())


def _totp() -> str:
    import time

    return bank_auth.totp(bank_auth.secret_bytes(SECRET), time.time())


def scan(kiosk: Kiosk, browser: Browser, tmp_path: Path) -> Page:
    """Screenshot the kiosk, decode its QR, open the URL on a phone-sized context."""
    qr = kiosk.page.locator('img[data-role="qr"]')
    qr.wait_for(state="visible", timeout=30_000)
    wait_for(lambda: qr.evaluate("img => img.naturalWidth") > 0, 10, "the QR image")
    shot = tmp_path / "kiosk.png"
    kiosk.page.screenshot(path=str(shot), full_page=True)
    urls = [d.text for d in zxingcpp.read_barcodes(Image.open(shot))]
    assert len(urls) == 1 and urls[0].startswith(GATEWAY["url"] + "/p/"), urls
    context = browser.new_context(
        viewport=PHONE,  # type: ignore[arg-type]
        ignore_https_errors=True,
        is_mobile=True,
        has_touch=True,
    )
    phone = context.new_page()
    answer = phone.goto(urls[0])
    assert answer is not None and answer.status == 200
    phone.locator('[data-service="tube_withdrawal"] button').wait_for(timeout=10_000)
    code = phone.locator('[data-role="matching-code"]').get_attribute("data-code")
    kiosk.page.locator(f'[data-role="matching-code"][data-code="{code}"]').wait_for(timeout=10_000)
    return phone


def job_state(phone: Page) -> str:
    return phone.locator('[data-role="job-state"]').get_attribute("data-state") or ""


def finish_tube(kiosk: Kiosk) -> str:
    done = kiosk.wait_screen("tube", timeout=60, until=lambda d: bool(d.get("finished")))
    assert done["outcome"] == "completed", done
    kiosk.click("done")
    return str(done["reference"])


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

    phone.locator('[data-service="tube_withdrawal"] button').click()
    phone.locator("#auth-bank").check()
    phone.locator("#job-customer_id").fill("C-1")
    phone.locator("#job-password").fill(PASSWORD)
    phone.locator("#job-totp").fill(_totp())
    phone.locator('[data-action="login"]').click()
    phone.locator('[data-role="login"][data-state="signed_in"]').wait_for(
        state="attached", timeout=10_000
    )
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
    kiosk.page.locator('[data-action="finish"]').click()
    kiosk.wait_screen("attract", timeout=30)
    phone.locator('[data-action="cancel"]').click()
    phone.context.close()


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
    kiosk.finish()
    phone.locator('[data-action="cancel"]').click()
    phone.context.close()


def test_value_out_canceled_at_the_terminal_releases_nothing(
    kiosk: Kiosk, browser: Browser, tmp_path: Path
) -> None:
    stack = kiosk.stack
    before = balances(stack)
    phone = scan(kiosk, browser, tmp_path)
    phone.locator('[data-service="tube_withdrawal"] button').click()
    phone.locator("#auth-bank").check()
    phone.locator("#job-customer_id").fill("C-2")
    phone.locator("#job-password").fill(PASSWORD)
    phone.locator("#job-totp").fill(_totp())
    phone.locator('[data-action="login"]').click()
    phone.locator('[data-role="login"][data-state="signed_in"]').wait_for(
        state="attached", timeout=10_000
    )
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
    phone.locator('[data-action="cancel"]').click()
    phone.context.close()


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
        data={"customer_id": "C-2", "password": PASSWORD, "totp": _totp()},
        headers={"Origin": GATEWAY["url"], "X-CSRF-Token": csrf},
    )
    assert (right.status, right.json()["error"]) == (403, "login_locked")
    phone.locator('[data-action="cancel"]').click()
    offered = kiosk.wait_screen(
        "attract", timeout=10, until=lambda d: (d.get("phone") or {}).get("state") == "offering"
    )
    assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}", offered["phone"]["short_code"])
