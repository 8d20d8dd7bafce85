"""Phone pairing with real processes (server with TLS, simulator, agent with its kiosk page,
the phone gateway) and Debian's Chromium: screenshot the kiosk page, decode its QR with
zxing-cpp, open the URL in a phone-sized context, see the service list; fault the tube
station in the simulator and see the tube services leave the phone's list within 5 s."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.phone_support import PHONE, phone_gateway, phone_page, read_qr
from tests.integration.stack import Stack, wait_for

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed"),
]
TUBE = ("tube_deposit", "tube_withdrawal")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _page_up(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url + "healthz", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


@pytest.fixture
def branch() -> Iterator[tuple[Stack, str, subprocess.Popen[bytes]]]:
    root = Path(tempfile.mkdtemp(prefix="bl-m-", dir="/tmp"))
    stack = Stack(root)
    stack.init_pki()
    gateway_port = _free_port()
    kiosk_port = _free_port()
    while kiosk_port == gateway_port:  # the kernel may hand the same free port out twice
        kiosk_port = _free_port()
    gateway_url = f"https://127.0.0.1:{gateway_port}"
    try:
        stack.start_server(extra=["--mobile-url", gateway_url])
        with phone_gateway(stack, gateway_port) as gateway:
            stack.devices = ("card_reader", "pin_pad", "printer", "tube_station")
            stack.required_devices = ("card_reader", "pin_pad")
            stack.agent_extra = f'\n[kiosk]\nlisten = "127.0.0.1:{kiosk_port}"\nlanguage = "en"\n'
            stack.start_sim()
            stack.start_agent()
            kiosk_url = f"http://127.0.0.1:{kiosk_port}/"
            # An agent start is mostly Python importing; on a busy CI machine it can take
            # longer than 30 s (the page answers as soon as the agent is up).
            wait_for(lambda: _page_up(kiosk_url), 90, "the kiosk page")
            yield stack, kiosk_url, gateway
    finally:
        stack.stop_all()
        shutil.rmtree(root, ignore_errors=True)


def _tube_listed(phone: object) -> bool:
    return bool(phone.locator('[data-role="services"] [data-service^="tube_"]').count())  # type: ignore[attr-defined]


# long: one customer's path from the kiosk's screen to the phone's list, as it happens
def test_scan_the_kiosk_qr_and_follow_the_terminal_on_the_phone(
    branch: tuple[Stack, str, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    stack, kiosk_url, gateway = branch
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            kiosk = browser.new_page(viewport={"width": 1080, "height": 1440})
            kiosk.goto(kiosk_url)
            decoded = read_qr(kiosk, tmp_path / "kiosk.png")
            urls = [text for text in decoded if text.startswith("https://")]
            assert len(urls) == 1, decoded
            url = urls[0]
            assert re.fullmatch(r"https://127\.0\.0\.1:\d+/p/[A-Za-z0-9_-]{20,64}", url)
            short = kiosk.locator('[data-role="short-code"]').get_attribute("data-code")
            assert short and re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}", short)

            phone = phone_page(browser)
            answer = phone.goto(url)
            assert answer is not None and answer.status == 200
            phone.locator('[data-role="services"] [data-service="tube_deposit"]').wait_for(
                timeout=10_000
            )
            listed = phone.locator('[data-role="services"] [data-service]')
            services = {listed.nth(i).get_attribute("data-service") for i in range(listed.count())}
            assert {"tube_deposit", "tube_withdrawal", "video_teller"} <= services
            code = phone.locator('[data-role="matching-code"]').get_attribute("data-code")
            assert code and re.fullmatch(r"\d{4}", code)
            kiosk.locator(f'[data-role="matching-code"][data-code="{code}"]').wait_for(
                timeout=10_000
            )

            # The same URL on another phone: already used.
            other = browser.new_context(viewport=PHONE, ignore_https_errors=True).new_page()
            again = other.goto(url)
            assert again is not None and again.status == 410
            assert other.locator('[data-reason="handle_used"]').count() == 1

            # A tube fault on the terminal takes the tube services off the phone.
            faulted = time.monotonic()
            stack.sim_fault("tube_station", "door_open", True)
            wait_for(lambda: not _tube_listed(phone), 5, "tube services off the phone", 0.05)
            assert time.monotonic() - faulted < 5
            assert not _tube_listed(phone)
            assert phone.locator('[data-service="video_teller"]').count() == 1
        finally:
            browser.close()
    assert gateway.poll() is None, (stack.root / "gateway.log").read_text()
