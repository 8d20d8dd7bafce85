"""The phone-jobs acceptance's branch and steps (``test_phone_jobs.py``): the kiosk branch with
the cheque sale's devices, two customers enrolled for the bank's sign-in (password + TOTP),
the phone gateway (``phone_support.phone_gateway``); the kiosk's QR scanned into a
phone-sized page, and the steps the tests share on both screens."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page

from branchline.common.totp import STEP_SECONDS
from branchline.server.mobile import bank_auth
from branchline.server.storage.engine import open_database
from tests.browser.cheque_support import CHEQUE_DEVICES, seed_cheques
from tests.browser.kiosk_support import Kiosk, KioskBranch, free_port, kiosk_branch
from tests.browser.phone_support import phone_gateway, phone_page, read_qr, wait_gateway
from tests.browser.recordings_support import audit_of
from tests.integration.stack import wait_for

SECRET = base64.b32encode(b"branchline-phone-c1!").decode()
PASSWORD = "correct horse battery"
# The gateway's address, set by ``phone_branch`` for the module's tests.
GATEWAY: dict[str, Any] = {}


@contextmanager
def phone_branch(logs: Path, **kiosk: float | str) -> Iterator[KioskBranch]:
    """The kiosk branch (``[kiosk]`` ``kiosk``) with the cheque sale seeded, C-1 and C-2
    enrolled for the bank's sign-in, and the phone gateway the server's QR points at."""
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    with kiosk_branch(
        logs,
        server_extra=("--mobile-url", url),
        customer_timeout=90,
        extra_devices=CHEQUE_DEVICES,
        **kiosk,
    ) as started:
        stack = started.stack
        try:
            # The gateway starts up (a Python process) while the bank's data is seeded here.
            with phone_gateway(stack, port, wait=False) as gateway:
                seed_cheques(stack)
                stack.sim_act("cheque_printer", "set_leaf_time", seconds="0.01")
                stack.sim_act("id_reader", "place", card="valid")
                engine = open_database(f"sqlite:///{stack.root / 'server.db'}")
                bank_auth.enroll(engine, "C-1", PASSWORD, SECRET)
                bank_auth.enroll(engine, "C-2", PASSWORD, SECRET)
                engine.dispose()
                wait_gateway(stack, url, gateway)
                GATEWAY["url"] = url
                yield started
        finally:
            log = stack.root / "gateway.log"
            if log.exists():
                (logs / "gateway.log").write_bytes(log.read_bytes())


# The last TOTP step each customer signed in with in this module.
_STEPS_USED: dict[str, int] = {}


def totp(customer_id: str) -> str:
    """The code the customer's authenticator shows, for a step the customer has not signed in
    with yet: the bank accepts each step once, so a second sign-in within the same 30 s (a
    quick machine runs these tests that fast) takes the next step's code, which its drift
    window allows, or waits for the clock beyond that, as a customer would."""
    while True:
        now = time.time()
        step = int(now // STEP_SECONDS)
        use = max(step, _STEPS_USED.get(customer_id, -1) + 1)
        if use <= step + 1:
            break
        print(f"TOTPWAIT {(step + 1) * STEP_SECONDS - now + 0.1:.1f}", flush=True)
        time.sleep((step + 1) * STEP_SECONDS - now + 0.1)
    _STEPS_USED[customer_id] = use
    return bank_auth.totp(bank_auth.secret_bytes(SECRET), use * STEP_SECONDS)


def scan(kiosk: Kiosk, browser: Browser, tmp_path: Path) -> Page:
    """Screenshot the kiosk, decode its QR, open the URL on a phone-sized context."""
    urls = read_qr(kiosk.page, tmp_path / "kiosk.png")
    assert len(urls) == 1 and urls[0].startswith(GATEWAY["url"] + "/p/"), urls
    phone = phone_page(browser)
    answer = phone.goto(urls[0])
    assert answer is not None and answer.status == 200
    phone.locator('[data-service="tube_withdrawal"] button').wait_for(timeout=10_000)
    code = phone.locator('[data-role="matching-code"]').get_attribute("data-code")
    kiosk.page.locator(f'[data-role="matching-code"][data-code="{code}"]').wait_for(timeout=10_000)
    return phone


def unpair(kiosk: Kiosk, phone: Page) -> None:
    """End the pairing from the phone; once the kiosk offers a new QR, close the phone."""
    phone.locator('[data-action="cancel"]').click()
    kiosk.wait_screen(
        "attract", timeout=30, until=lambda d: (d.get("phone") or {}).get("state") == "offering"
    )
    phone.context.close()


def job_state(phone: Page) -> str:
    return phone.locator('[data-role="job-state"]').get_attribute("data-state") or ""


def job_id(phone: Page) -> str:
    return phone.locator('[data-role="job-state"]').get_attribute("data-job-id") or ""


def watch_recording(phone: Page, stack: Any) -> str:
    """The job's recording listed on the phone and played there; the viewing audited as the
    phone's, for the job's customer."""
    box = phone.locator('[data-role="recordings"][data-state]')
    box.wait_for(state="attached", timeout=90_000)
    said = (box.get_attribute("data-state"), box.get_attribute("data-reason"), box.inner_text())
    assert said[0] == "listed", said
    watch = box.locator('[data-action="watch"]').first
    sha = watch.get_attribute("data-sha256") or ""
    watch.click()
    player = phone.locator('[data-role="recording-player"]')
    wait_for(
        lambda: player.evaluate("v => v.readyState >= 1 && v.duration > 0"),
        30,
        "the recording playing on the phone",
    )
    audit = audit_of(stack, sha)
    assert any(a.startswith("phone ") and what == "viewed" for a, what in audit), audit
    return sha


def recordings_answer(phone: Page, job: str) -> tuple[int, str]:
    answer = phone.request.get(f"{GATEWAY['url']}/api/jobs/{job}/recordings")
    return answer.status, str(answer.json().get("error", ""))


def bank_login(phone: Page, customer_id: str, password: str, code: str) -> Any:
    """The phone's own ``/api/login`` call (with its CSRF token): the bank's answer."""
    csrf = phone.request.get(GATEWAY["url"] + "/api/pairing").json()["csrf_token"]
    return phone.request.post(
        GATEWAY["url"] + "/api/login",
        data={"customer_id": customer_id, "password": password, "totp": code},
        headers={"Origin": GATEWAY["url"], "X-CSRF-Token": csrf},
    )


def finish_tube(kiosk: Kiosk) -> str:
    done = kiosk.wait_screen("tube", timeout=60, until=lambda d: bool(d.get("finished")))
    assert done["outcome"] == "completed", done
    kiosk.click("done")
    return str(done["reference"])


def sign_in_at_the_bank(phone: Page, customer_id: str, service: str) -> None:
    phone.locator(f'[data-service="{service}"] button').click()
    phone.locator("#auth-bank").check()
    phone.locator("#job-customer_id").fill(customer_id)
    phone.locator("#job-password").fill(PASSWORD)
    phone.locator("#job-totp").fill(totp(customer_id))
    phone.locator('[data-action="login"]').click()
    phone.locator('[data-role="login"][data-state="signed_in"]').wait_for(
        state="attached", timeout=10_000
    )


def end_bank_session(kiosk: Kiosk) -> None:
    """Signed in at the bank, nobody's card is in: finish from the menu."""
    kiosk.wait_screen("menu", timeout=30)
    kiosk.page.locator('[data-action="finish"]').click()
    kiosk.wait_screen("attract", timeout=30)
