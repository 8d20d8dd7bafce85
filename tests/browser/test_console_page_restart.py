"""The console page across a restart of its console process, in Chromium against an in-process
server and console (no terminal): the new process serves the page before it has signed in
(its state lists no views yet), and the page must keep the screen the person was on.

Before the fix the page fell back to the first view (``tasks``) whenever a state listed
none: a teller on the calls screen whose console restarted was left on the tasks screen, and
the next call rang there unseen (the flaky ``test_call_media`` console-restart test: the
server logged the call ringing, the console nothing, and the customer left 17 s later). The
sign-in is held here by keeping the server down while the page reconnects, so the window that
a busy machine opens now and then is open every time.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from playwright.async_api import Page, async_playwright

from branchline.server.console.session import ConsoleSession
from branchline.server.console.web import ConsoleServer
from branchline.server.dispatch.model import Actor
from tests.browser.kiosk_support import CHROMIUM
from tests.browser.media_support import MEDIA_ARGS
from tests.unit.console_support import Stack, restartable_stack

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120)]

TELLER = "teller:T-1"  # console_support's teller of branch BR-1, skill "loan"
TERMINAL = Actor("terminal", "K-1")


def console(stack: Stack, port: int = 0) -> ConsoleServer:
    return ConsoleServer(ConsoleSession(dataclasses.replace(stack.settings(TELLER), port=port)))


async def on_calls_screen(page: Page) -> None:
    """The teller goes on duty and opens the calls screen."""
    await page.locator('[data-role="duty"] [data-action="tasks.duty"]').click(timeout=30_000)
    await page.locator('[data-role="duty"][data-on-duty="true"]').wait_for(timeout=10_000)
    await page.locator('[data-view-button="calls"]').click()
    await page.locator('[data-screen="calls"]').wait_for(timeout=10_000)


async def test_the_teller_stays_on_the_calls_screen_while_a_restarted_console_signs_in(
    tmp_path: Path,
) -> None:
    async with restartable_stack(tmp_path) as (stack, restart), async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=MEDIA_ARGS)
        first = console(stack)
        url = await first.start()
        second: list[ConsoleServer] = []
        try:
            page = await browser.new_page()
            await page.goto(url)
            await on_calls_screen(page)
            await first.stop()
            connecting = page.locator('[data-role="connection"][data-state="connecting"]')
            await connecting.wait_for(state="attached", timeout=10_000)

            async def console_back_before_the_server() -> None:
                # The new process on the same address reaches no server: not signed in.
                second.append(console(stack, int(url.rstrip("/").rsplit(":", 1)[1])))
                await second[0].start()
                connected = page.locator('[data-role="connection"][data-state="connected"]')
                await connected.wait_for(state="attached", timeout=15_000)
                await page.locator('[data-screen="signin"]').wait_for(timeout=10_000)

            await restart(console_back_before_the_server)
            # Signed in again: the next call rings on the screen the teller is on.
            call = stack.calls.request_call(TERMINAL, "BR-1", "call-1", "loan", "video_teller")
            ringing = page.locator(f'[data-role="current-call"][data-call="{call.call_id}"]')
            await ringing.locator('[data-action="calls.answer"]').wait_for(timeout=20_000)
            assert await page.locator('[data-screen="calls"]').is_visible()
            assert await page.get_attribute('[data-view-button="calls"]', "aria-current") == "page"
        finally:
            for server in second:
                await server.stop()
            await browser.close()
