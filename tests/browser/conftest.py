"""Fixtures for the kiosk page's acceptance tests (docs/kiosk.md is the page's contract).

``branch``: one branch (server, simulator, agent with ``[kiosk]``) per test module, started
with the module's ``KIOSK`` settings (a dict of ``[kiosk]`` options) — each test leaves the
terminal on the attract screen for the next. ``browser``: Debian's Chromium, one per session.
``kiosk``: a fresh page on the branch recording every frame and response it receives, with
screenshots saved under ``var/screenshots/kiosk/``; after each test, nothing it received may
hold a secret (``secrets_in``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.browser.kiosk_support import (
    CHROMIUM,
    VIEWPORT,
    Kiosk,
    KioskBranch,
    kiosk_branch,
    launch_chromium,
)
from tests.browser.page_secrets import secrets_in


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser" in str(item.fspath):
            item.add_marker(pytest.mark.browser)
            if not CHROMIUM.exists():
                reason = f"{CHROMIUM} is not installed (apt-get install chromium; .ci/run does)"
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="module")
def branch(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KioskBranch]:
    settings = dict(getattr(request.module, "KIOSK", {}))
    customer_timeout = float(getattr(request.module, "CUSTOMER_TIMEOUT", 60))
    logs = tmp_path_factory.mktemp("kiosk-logs")
    with kiosk_branch(logs, customer_timeout=customer_timeout, **settings) as started:
        yield started


# Per module, not per session: Playwright's sync API keeps an event loop running in this
# thread while it is open, and asyncio tests that the same worker runs later could not
# start theirs (``Runner.run() cannot be called from a running event loop``).
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def kiosk(browser: Browser, branch: KioskBranch, request: pytest.FixtureRequest) -> Iterator[Kiosk]:
    context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    page = context.new_page()
    customer = Kiosk(page, branch, request.node.name)
    try:
        customer.open()
        # The previous test on this branch may have failed half-way.
        customer.back_to_attract()
        yield customer
        # Whatever flow the test drove, nothing secret reached the page.
        assert secrets_in(customer.received) == []
    finally:
        context.close()
