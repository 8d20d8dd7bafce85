"""Phone flow through the gateway and pages: QR scan → service list, job → ready on the kiosk.

Real processes (``tests/browser/kiosk_support.py``: server with TLS, simulator, agent serving
the kiosk page; ``tests/browser/phone_support.py``: the ``branchline-mobile`` gateway over
HTTPS with the branch's development PKI) and Debian's Chromium: the kiosk page, and one
phone-sized browser context per pairing. Goals from issue 16: scan p99 < 1 s, job ready
p99 < 500 ms. Each round:

* ``scan``: the kiosk's QR read from a screenshot (zxing-cpp, as a camera would; not timed),
  the URL opened in a fresh phone context; from the phone's navigation start
  (``performance.timeOrigin``: TLS handshake, pairing, the page) to the service list in
  its DOM (the gateway renders it into the page; a MutationObserver installed before the
  page's own scripts); ``scan_to_working_list``: until the page's script has replaced it
  with working buttons (its styles and scripts loaded, the API read again);
* ``job_ready``: a video-teller job filled in on the phone's form; from its ``submit`` event
  to the kiosk page's ready screen in the DOM (a MutationObserver there), both stamped on
  the browser's wall clock (``timeOrigin + now``). Then canceled on the kiosk, the pairing
  ended from the phone, and the next round waits for a new QR.

The ceiling in the same run is one bare HTTPS round trip from the phone page to the gateway
(``/healthz``). All phones are one address here, so the gateway's per-phone and
per-terminal rate limits are raised for the run. Figures only: no pass/fail here.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

ROUNDS = 30
SERVICE = "video_teller"
LIMITS = ("--phone-rate", "1000", "--terminal-rate", "1000")

# Before the phone page's scripts run: stamp the moment its service list is in the DOM
# (the gateway renders it into the page) and when the script made it work (``data-live``).
LISTED = """(() => {
  const look = () => {
    if (window.__listedAt === undefined &&
        document.querySelector('[data-role="services"] [data-service]')) {
      window.__listedAt = performance.now();
    }
    if (window.__liveAt === undefined &&
        document.querySelector('[data-role="services"][data-live] [data-service]')) {
      window.__liveAt = performance.now();
    }
  };
  new MutationObserver(look).observe(document, {childList: true, subtree: true});
})();"""
SUBMITTED = """() => {
  window.__submittedAt = undefined;
  document.addEventListener("submit", () => {
    window.__submittedAt = performance.timeOrigin + performance.now();
  }, {capture: true, once: true});
}"""
READY = """() => {
  window.__readyAt = undefined;
  const look = () => {
    if (window.__readyAt === undefined &&
        document.querySelector('[data-screen="phone_job"] [data-role="phone-job-ready"]')) {
      window.__readyAt = performance.timeOrigin + performance.now();
    }
  };
  new MutationObserver(look).observe(document.body, {childList: true, subtree: true});
  look();
}"""
# Where a scan's time goes: the pairing page served, its scripts run, the list fetched.
PHASES = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  return [nav.responseEnd, nav.domContentLoadedEventEnd, window.__listedAt, window.__liveAt];
}"""
BARE = """async () => {
  const started = performance.now();
  await fetch("/healthz", {cache: "no-store"});
  return performance.now() - started;
}"""


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def next_qr(kiosk: Any, shot: Path, seen: set[str], base: str) -> str:
    """The URL of the kiosk's QR once it is one no phone has opened yet."""
    from tests.browser.phone_support import read_qr

    deadline = time.monotonic() + 30
    while True:
        kiosk.locator('[data-role="phone"][data-state="offering"]').wait_for(timeout=30_000)
        urls = [u for u in read_qr(kiosk, shot) if u.startswith(base + "/p/")]
        if len(urls) == 1 and urls[0] not in seen:
            seen.add(urls[0])
            return urls[0]
        assert time.monotonic() < deadline, f"no new QR on the kiosk: {urls}"
        kiosk.wait_for_timeout(50)


def one_round(browser: Any, kiosk: Any, url: str) -> dict[str, float]:
    """One pairing's figures (ms): ``scan`` and its phases ``page`` (the pairing page
    served), ``scripts`` (until they ran), ``api`` (until the list is shown); ``job``;
    ``bare`` (one HTTPS round trip)."""
    from tests.browser.phone_support import PHONE

    context = browser.new_context(
        viewport=PHONE, ignore_https_errors=True, is_mobile=True, has_touch=True
    )
    try:
        context.add_init_script(LISTED)
        phone = context.new_page()
        answer = phone.goto(url, wait_until="commit")
        assert answer is not None and answer.status == 200, answer and answer.status
        phone.locator(f'[data-role="services"][data-live] [data-service="{SERVICE}"]').wait_for(
            timeout=10_000
        )
        page, scripts, scan, live = (float(v) for v in phone.evaluate(PHASES))
        bare = float(phone.evaluate(BARE))
        phone.locator(f'[data-service="{SERVICE}"] button').click()
        phone.locator('[data-role="job-form"]').wait_for(timeout=10_000)
        phone.evaluate(SUBMITTED)
        kiosk.evaluate(READY)
        phone.locator('[data-action="submit"]').click()
        kiosk.locator('[data-role="phone-job-ready"]').wait_for(timeout=10_000)
        job = float(kiosk.evaluate("() => window.__readyAt")) - float(
            phone.evaluate("() => window.__submittedAt")
        )
        kiosk.locator('[data-screen="phone_job"] [data-action="cancel"]').click()
        kiosk.locator('[data-screen="attract"]').wait_for(timeout=30_000)
        phone.locator('[data-role="job-state"][data-state="canceled"]').wait_for(
            state="attached", timeout=10_000
        )
        phone.locator('[data-action="cancel"]').click()
        phone.locator('[data-screen="paired"][data-state="ended"]').wait_for(
            state="attached", timeout=10_000
        )
    finally:
        context.close()
    return {
        "scan": scan,
        "live": live,
        "page": page,
        "scripts": scripts - page,
        "api": live - scripts,
        "job": job,
        "bare": bare,
    }


def run() -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    from tests.browser.kiosk_support import VIEWPORT, free_port, kiosk_branch, launch_chromium
    from tests.browser.phone_support import phone_gateway

    port = free_port()
    base = f"https://127.0.0.1:{port}"
    samples: dict[str, list[float]] = {}
    with (
        tempfile.TemporaryDirectory() as tmp,
        kiosk_branch(
            language="en", inactivity_timeout=600, server_extra=("--mobile-url", base)
        ) as branch,
        phone_gateway(branch.stack, port, *LIMITS),
        sync_playwright() as pw,
    ):
        browser = launch_chromium(pw)
        try:
            kiosk = browser.new_context(viewport=VIEWPORT).new_page()  # type: ignore[arg-type]
            kiosk.goto(branch.url)
            kiosk.locator('[data-screen="attract"]').wait_for(timeout=30_000)
            seen: set[str] = set()
            for _ in range(ROUNDS):
                url = next_qr(kiosk, Path(tmp) / "kiosk.png", seen, base)
                for key, value in one_round(browser, kiosk, url).items():
                    samples.setdefault(key, []).append(value)
        finally:
            browser.close()
    return figures(samples)


def figures(samples: dict[str, list[float]]) -> dict[str, float]:
    scans, jobs = samples["scan"], samples["job"]
    median = statistics.median
    return {
        "scan_p50_ms": median(scans),
        "scan_p99_ms (goal < 1000)": percentile(scans, 0.99),
        "scan_to_working_list_p50_ms": median(samples["live"]),
        "scan_to_working_list_p99_ms": percentile(samples["live"], 0.99),
        "scan_page_served_p50_ms": median(samples["page"]),
        "scan_scripts_ran_p50_ms": median(samples["scripts"]),
        "scan_api_to_working_list_p50_ms": median(samples["api"]),
        "job_ready_p50_ms": median(jobs),
        "job_ready_p99_ms (goal < 500)": percentile(jobs, 0.99),
        "bare_https_p50_ms": median(samples["bare"]),
        "scan_over_bare_https": median(scans) / median(samples["bare"]),
        "rounds": float(len(scans)),
    }


if __name__ == "__main__":
    for key, value in run().items():
        print(f"   {key:40} {value:14.4f}")
