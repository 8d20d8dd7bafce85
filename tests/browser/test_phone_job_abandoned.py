"""The phone's view of a job the terminal abandoned, with real processes (server with TLS,
simulator, agent with its kiosk page, the phone gateway) and Debian's Chromium: a statement
sent from the phone waits on the terminal's screen; nobody is there (no kiosk page open
either), the terminal's session times out, and the phone shows the job abandoned with the
reason in words — once: it stops asking after the end."""

from __future__ import annotations

import shutil
import socket
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from tests.browser.kiosk_support import page_served
from tests.browser.phone_support import phone_gateway, phone_page
from tests.integration.stack import Stack, wait_for

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed"),
]


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


@pytest.fixture
def branch() -> Iterator[tuple[Stack, str]]:
    root = Path(tempfile.mkdtemp(prefix="bl-a-", dir="/tmp"))
    stack = Stack(root)
    stack.init_pki()
    gateway_port, kiosk_port = _free_ports(2)
    gateway_url = f"https://127.0.0.1:{gateway_port}"
    try:
        stack.start_server(extra=["--mobile-url", gateway_url])
        with phone_gateway(stack, gateway_port):
            stack.devices = ("card_reader", "pin_pad", "printer", "tube_station")
            stack.required_devices = ("card_reader", "pin_pad")
            # A customer who walks away: warned after 5 s, gone 20 s later (WCAG's least).
            stack.agent_extra = (
                f'\n[kiosk]\nlisten = "127.0.0.1:{kiosk_port}"\nlanguage = "en"\n'
                "inactivity_timeout = 5.0\nwarning_seconds = 20.0\n"
            )
            stack.start_sim()
            stack.start_agent()
            kiosk_url = f"http://127.0.0.1:{kiosk_port}/"
            wait_for(lambda: page_served(kiosk_url), 90, "the kiosk page")
            yield stack, gateway_url
    finally:
        stack.stop_all()
        shutil.rmtree(root, ignore_errors=True)


def _qr_url(stack: Stack, gateway_url: str) -> str:
    """The URL the kiosk's QR encodes now (tests/browser/test_phone_pairing.py reads it
    from the screen; here no kiosk page is open)."""
    with sqlite3.connect(stack.root / "server.db") as conn:
        row = conn.execute(
            "SELECT handle FROM mobile_pairings WHERE terminal_id = ? AND state = 'offered'"
            " ORDER BY issued_at DESC LIMIT 1",
            (stack.terminal_id,),
        ).fetchone()
    return f"{gateway_url}/p/{row[0]}" if row else ""


# long: one phone's job from the form to its end, as the customer sees it
def test_the_phone_shows_the_abandoned_job_once(branch: tuple[Stack, str], tmp_path: Path) -> None:
    stack, gateway_url = branch
    url = wait_for(lambda: _qr_url(stack, gateway_url), 30, "a QR on offer")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            phone = phone_page(browser)
            asked: list[float] = []
            phone.on(
                "request",
                lambda r: asked.append(time.monotonic()) if "/api/jobs/" in r.url else None,
            )
            answer = phone.goto(url)
            assert answer is not None and answer.status == 200
            phone.locator('[data-service="statement_view"] button').click()
            phone.locator("#auth-terminal").check()
            today = date.today()
            phone.locator("#job-period_from").fill((today - timedelta(days=30)).isoformat())
            phone.locator("#job-period_to").fill(today.isoformat())
            phone.locator('[data-action="submit"]').click()
            status = phone.locator('[data-role="job-state"]')
            wait_for(lambda: status.get_attribute("data-state") == "ready", 15, "ready")
            # Nobody presses start at the terminal: 5 s, then the 20 s warning.
            wait_for(lambda: status.get_attribute("data-state") == "abandoned", 60, "abandoned")
            assert status.get_attribute("data-reason") == "timeout"
            text = status.inner_text()
            assert "Not finished" in text and "Nobody continued at the terminal" in text, text
            phone.screenshot(path=str(tmp_path / "phone-abandoned.png"))
            # Shown once: the page asks no more once the job has ended.
            ended_at = time.monotonic()
            time.sleep(3)
            assert [t for t in asked if t > ended_at + 1.5] == []
            assert status.get_attribute("data-state") == "abandoned"
        finally:
            browser.close()
