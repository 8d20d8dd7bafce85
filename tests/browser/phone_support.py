"""The phone side of the browser tests and ``bench/phone_flow.py``: the ``branchline-mobile``
gateway as a real process over HTTPS with the branch's development PKI, and the kiosk's QR
read the way a phone's camera does (a screenshot decoded with zxing-cpp)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import zxingcpp
from PIL import Image
from playwright.sync_api import Browser, Page

from branchline.server import pki
from tests.integration.stack import Stack, wait_for

# A phone's screen (CSS pixels).
PHONE = {"width": 390, "height": 844}


def phone_page(browser: Browser) -> Page:
    """A page in a phone-sized context of its own (touch, mobile; the demo PKI's certificate
    accepted)."""
    context = browser.new_context(
        viewport=PHONE,  # type: ignore[arg-type]
        ignore_https_errors=True,
        is_mobile=True,
        has_touch=True,
    )
    return context.new_page()


def gateway_up(url: str) -> bool:
    import ssl
    import urllib.request

    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=2, context=unverified) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def wait_gateway(stack: Stack, url: str, gateway: subprocess.Popen[bytes]) -> None:
    """Until the gateway at ``url`` answers its health check (or has exited: its log)."""
    wait_for(lambda: gateway.poll() is not None or gateway_up(url), 30, "the phone gateway")
    assert gateway.poll() is None, (stack.root / "gateway.log").read_text()


@contextmanager
def phone_gateway(
    stack: Stack, port: int, *extra: str, name: str = "gw1", wait: bool = True
) -> Iterator[subprocess.Popen[bytes]]:
    """``branchline-mobile`` on ``https://127.0.0.1:<port>`` for the stack's server (its
    ``mobile`` certificate issued from the stack's PKI); its log in ``gateway.log``.
    ``wait=False``: the block gets it while it starts up (``wait_gateway`` before use)."""
    if not (stack.pki / "mobile" / f"{name}.pem").exists():
        pki.issue_user_cert(stack.pki, "mobile", name)
    log = open(stack.root / "gateway.log", "wb")  # noqa: SIM115 - the child writes to it
    gateway = subprocess.Popen(
        [
            sys.executable, "-m", "branchline.server.mobile_gateway.main",
            "--tls-dir", str(stack.pki), "--name", name,
            "--listen", f"127.0.0.1:{port}", "--server", f"127.0.0.1:{stack.server_port}",
            *extra,
        ],
        stdout=log, stderr=subprocess.STDOUT, cwd=stack.root,
    )  # fmt: skip
    try:
        if wait:
            wait_gateway(stack, f"https://127.0.0.1:{port}", gateway)
        yield gateway
    finally:
        gateway.terminate()
        gateway.wait(10)
        log.close()


def read_qr(kiosk: Page, shot: Path) -> list[str]:
    """The texts of the QR codes on the kiosk's screen, from a screenshot (as a camera)."""
    qr = kiosk.locator('img[data-role="qr"]')
    qr.wait_for(state="visible", timeout=30_000)
    # The pages' CSP forbids string evaluation: poll from here.
    wait_for(lambda: qr.evaluate("img => img.naturalWidth") > 0, 10, "the QR image")
    kiosk.screenshot(path=str(shot), full_page=True)
    return [d.text for d in zxingcpp.read_barcodes(Image.open(shot))]
