"""Issue 14 item 1, video-teller calls with real media, in Chromium (fake camera and
microphone) against real server, simulator, agent and console processes: a customer calls
from the kiosk page, the teller answers in the console, and both pages' peer connections
decode the other side's video (``getStats()`` inbound-rtp ``framesDecoded`` > 0); mute and
camera off on one side show on the other; the teller reads the card remotely (masked PAN),
asks for a signature the customer gives on the pad and sees it, and ends the call, which ends
on the kiosk page too (``branchline:call-ended``) with "call again" offered. An agent restart
mid-call ends the call on both sides, the customer is offered to call again, and the new call
from the same page connects with media; so does a restart of the teller's console process.

Issue 14 item 2: during a cash deposit, while the back-office clerk (BO-1, its own console)
counts the carrier, the kiosk page shows the clerk's camera live (``window.branchlineDesk``'s
peer connection decodes frames) with what was counted beside it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import grpc
import pytest
from playwright.sync_api import Browser, Page

from tests.browser.console_support import Console, console_processes, restart_console
from tests.browser.kiosk_support import Kiosk, KioskBranch
from tests.browser.media_support import (
    RECORD_EVENTS,
    add_video_teller,
    call_events,
    frames_decoded,
    media_browser,
    teller_on_calls,
)
from tests.browser.tube_pages_support import (
    amount_in,
    carrier_arrives,
    count_notes,
    fill_deposit,
    finish_tube,
    load_and_send,
    tube_step,
)
from tests.integration.stack import wait_for
from tests.integration.tube_support import CLERK

KIOSK = {"language": "en", "inactivity_timeout": 60}
TELLER = "V1"
PANEL = '[data-role="call-media"]'


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """This module's Chromium has a fake camera and microphone."""
    with media_browser() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def console_urls(branch: KioskBranch) -> Iterator[tuple[str, str]]:
    """The consoles of video teller V1 of the terminal's branch (skill "other") and of the
    back-office clerk, started together."""
    add_video_teller(branch.stack, TELLER)
    with console_processes(branch.stack, f"teller:{TELLER}", f"teller:{CLERK}") as (vt, clerk):
        yield vt, clerk


@pytest.fixture(scope="module")
def teller(console_urls: tuple[str, str], browser: Browser) -> Iterator[Console]:
    """Video teller V1 on duty in their console."""
    console = Console(browser, console_urls[0], "call-media-teller")
    try:
        teller_on_calls(console)
        console.page.evaluate(RECORD_EVENTS)
        yield console
    finally:
        console.close()


def call_in(kiosk: Kiosk, teller: Console) -> str:
    """The customer calls from the kiosk page, the teller answers: both pages connected."""
    kiosk.page.evaluate(RECORD_EVENTS)
    if kiosk.screen() != "video":  # else: "call again" on the ended call's screen
        kiosk.click("start", service="video")
    kiosk.wait_screen("video")
    kiosk.fill("business_type", "other")
    kiosk.click("request")
    data = kiosk.wait_screen("video", until=lambda d: d.get("state") == "connecting")
    call_id = str(data["call_id"])
    current = teller.page.locator(f'[data-role="current-call"][data-call="{call_id}"]')
    current.locator('[data-action="calls.answer"]').click(timeout=15_000)
    kiosk.wait_screen("video", until=lambda d: d.get("state") == "connected")
    for page in (kiosk.page, teller.page):
        page.locator(f'{PANEL}[data-call="{call_id}"][data-state="connected"]').wait_for(
            timeout=20_000
        )
    for page, side in ((kiosk.page, "kiosk"), (teller.page, "teller")):
        wait_for(lambda p=page: frames_decoded(p) > 0, 20, f"the {side} page decoding video")  # type: ignore[misc]
    return call_id


def test_call_with_media_card_signature_and_hang_up(
    kiosk: Kiosk, teller: Console, branch: KioskBranch
) -> None:
    call_id = call_in(kiosk, teller)
    kiosk.shot("call-connected")
    teller.shot("call-connected")
    streams = [e for e in call_events(kiosk.page) if e["name"] == "branchline:call-streams"]
    assert streams and streams[0]["callId"] == call_id and streams[0]["local"] == 2

    mute_and_camera_seen_across(kiosk, teller)

    # -- the teller reads the card remotely -----------------------------------------------
    teller.page.locator('[data-action="calls.command"][data-kind="read_card"]').click()
    kiosk.insert_card()
    read = teller.page.locator('tr[data-kind="read_card"][data-completion="success"]')
    read.wait_for(timeout=30_000)
    # The result in words: the completion and each field's name, never the raw keys.
    assert "Card number: " in read.inner_text() and "pan_masked" not in read.inner_text()
    assert read.locator('[data-role="completion"]').inner_text() == "succeeded"

    # -- asks for a signature, the customer signs on the pad, the teller sees it ---------
    teller.page.locator("#call-title").fill("I confirm the card replacement")
    teller.page.locator('[data-action="calls.command"][data-kind="signature"]').click()
    request = kiosk.page.locator('[data-role="signature-request"]')
    request.wait_for(timeout=15_000)
    assert "I confirm the card replacement" in request.inner_text()
    kiosk.click("sign")
    drawn = wait_for(lambda: _try_sign(branch), 30, "the customer signs on the pad")
    image = teller.page.locator('tr[data-kind="signature"] img[data-role="signature"]')
    image.wait_for(timeout=15_000)
    wait_for(lambda: image.evaluate("img => img.complete && img.naturalWidth > 0"), 10, "the image")
    signed = teller.page.locator('tr[data-kind="signature"][data-completion="success"]')
    assert drawn["sha256"][:12] in signed.inner_text()
    teller.shot("signature")

    # -- the teller hangs up: the call ends on both pages --------------------------------
    teller.page.locator('[data-action="calls.end"]').click()
    data = kiosk.wait_screen("video", until=lambda d: d.get("state") == "ended")
    assert data["call_id"] == call_id
    kiosk.button("request").wait_for()
    assert "again" in kiosk.button("request").inner_text()
    teller.page.locator(f'{PANEL}[data-state="ended"]').wait_for(timeout=10_000)
    for page in (kiosk.page, teller.page):
        wait_for(
            lambda p=page: any(  # type: ignore[misc]
                e["name"] == "branchline:call-ended" and e["callId"] == call_id
                for e in call_events(p)
            ),
            10,
            "the call-ended event",
        )
        assert page.evaluate("window.branchlineCall.pc") is None
    # The card read during the call comes back to the customer.
    wait_for(lambda: _try_take(branch), 30, "the card handed back")
    kiosk.shot("call-ended")


def test_agent_restart_mid_call_ends_it_on_both_sides(
    kiosk: Kiosk, teller: Console, branch: KioskBranch
) -> None:
    call_id = call_in(kiosk, teller)
    branch.kill_agent()
    # The kiosk page lost its agent: its media stops at once.
    kiosk.page.locator(f'#media {PANEL}[data-call="{call_id}"]').wait_for(
        state="detached", timeout=10_000
    )
    branch.start_agent()
    # The new agent hangs up the call the old one left: the teller's side ends ...
    teller.page.locator(f'{PANEL}[data-state="ended"]').wait_for(timeout=30_000)
    teller.page.locator(f'[data-role="current-call"][data-call="{call_id}"]').wait_for(
        state="detached", timeout=10_000
    )
    # ... and the customer is offered to call again.
    kiosk.wait_connected(30)
    data = kiosk.wait_screen(
        "video", timeout=30, until=lambda d: d.get("state") == "ended", shot="call-again"
    )
    assert data["call_id"] == call_id and data["end_reason"] == "restarted"
    kiosk.page.locator('[data-role="call-ended"][data-reason="restarted"]').wait_for()
    ended = [e for e in call_events(teller.page) if e["name"] == "branchline:call-ended"]
    assert any(e["callId"] == call_id for e in ended)
    # The customer calls again from the same page: the new call connects with media on both
    # sides (call_in waits for decoded frames), the earlier call's leftovers in the page
    # notwithstanding.
    again = call_in(kiosk, teller)
    assert again != call_id
    teller.page.locator('[data-action="calls.end"]').click()
    kiosk.wait_screen("video", until=lambda d: d.get("state") == "ended")


def test_kiosk_page_reload_mid_call_ends_it_and_offers_to_call_again(
    kiosk: Kiosk, teller: Console
) -> None:
    """A kiosk page reloads only when its browser crashed or was restarted: its media is gone,
    and the teller's page cannot resume it without a new offer, so the call ends on both
    sides and the customer, on the reloaded page, is offered to call again (docs/kiosk.md)."""
    call_id = call_in(kiosk, teller)
    kiosk.page.reload()
    teller.page.locator(f'{PANEL}[data-state="ended"]').wait_for(timeout=20_000)
    assert ended_on(teller.page, call_id) == ["ended"]
    data = kiosk.wait_screen("video", timeout=30, until=lambda d: d.get("state") == "ended")
    assert data["call_id"] == call_id
    kiosk.page.locator(f"#media {PANEL}").wait_for(state="detached", timeout=10_000)
    assert "again" in kiosk.button("request").inner_text()
    assert kiosk.page.evaluate("window.branchlineCall.pc") is None


def test_console_restart_mid_call_ends_it_on_both_sides(
    kiosk: Kiosk, teller: Console, branch: KioskBranch
) -> None:
    call_id = call_in(kiosk, teller)
    restart_console(branch.stack, f"teller:{TELLER}", teller.url)
    # The teller's page lost its console process: its media stops at once ...
    teller.page.locator(f'{PANEL}[data-state="ended"]').wait_for(timeout=10_000)
    # ... and the new process ends the call it left (console_restarted): the customer sees
    # it end, the media panel goes, and "call again" is offered.
    data = kiosk.wait_screen("video", timeout=30, until=lambda d: d.get("state") == "ended")
    assert data["call_id"] == call_id
    kiosk.page.locator(f"#media {PANEL}").wait_for(state="detached", timeout=10_000)
    assert "again" in kiosk.button("request").inner_text()
    # The kiosk's peer connection may fail (its peer gone) before the new process is up and
    # ends the call: then the kiosk page hangs up itself; either way it ends once.
    assert ended_on(kiosk.page, call_id) in (["ended"], ["failed"])
    assert ended_on(teller.page, call_id) == ["console_link_lost"]
    # The teller's page is back on the new process, the call gone from it.
    teller.page.locator('[data-role="connection"][data-state="connected"]').wait_for(
        state="attached", timeout=30_000
    )
    teller.page.locator(f'[data-role="current-call"][data-call="{call_id}"]').wait_for(
        state="detached", timeout=10_000
    )
    # The next call rings on the screen the teller was on (the calls screen: the page kept it
    # while the new process signed in) and connects with media on the new process.
    again = call_in(kiosk, teller)
    assert again != call_id
    teller.page.locator('[data-action="calls.end"]').click()
    kiosk.wait_screen("video", until=lambda d: d.get("state") == "ended")


def test_deposit_shows_the_back_office_on_the_customers_screen(
    kiosk: Kiosk, console_urls: tuple[str, str], browser: Browser
) -> None:
    clerk = Console(browser, console_urls[1], "desk-video-clerk")
    try:
        clerk.page.locator('[data-screen="backoffice"]').wait_for(timeout=30_000)
        kiosk.sign_in("deposit")
        fill_deposit(kiosk, "C1-CNY", "CNY", "150.00")
        load_and_send(kiosk)
        txn_id = carrier_arrives(kiosk, clerk)
        # The clerk opens the count: their camera goes to this customer's screen.
        clerk.row(txn_id).locator('[data-action="open_count"]').click()
        shown = kiosk.page.locator(f'#media [data-role="desk-video"][data-txn="{txn_id}"]')
        shown.and_(kiosk.page.locator('[data-state="connected"]')).wait_for(timeout=20_000)
        wait_for(
            lambda: frames_decoded(kiosk.page, "branchlineDesk") > 0,
            20,
            "the kiosk decoding the back office's video",
        )
        kiosk.shot("desk-video")
        count_notes(clerk, txn_id, {"100": "1", "50": "1"}, "150.00")
        # What was counted appears beside the video, which goes on.
        beside = shown.locator('[data-role="desk-counted"][data-counted="true"]')
        beside.wait_for(timeout=30_000)
        assert amount_in(beside.inner_text()) == 150
        kiosk.wait_screen("tube", timeout=30, until=tube_step("decide"), shot="desk-counted")
        assert frames_decoded(kiosk.page, "branchlineDesk") > 0
        kiosk.click("confirm")
        finish_tube(kiosk, "completed")
        # The transaction is over: the video stops on both sides.
        clerk.page.locator('[data-role="desk-video"]').wait_for(state="detached", timeout=30_000)
        kiosk.finish()
        shown.wait_for(state="detached", timeout=10_000)
    finally:
        clerk.close()


def mute_and_camera_seen_across(kiosk: Kiosk, teller: Console) -> None:
    """The customer mutes, the teller turns the camera off: each sees the other's."""
    kiosk.page.locator(f'#media {PANEL} [data-call-control="mute"]').click()
    teller.page.locator(f'{PANEL}[data-remote-audio="off"]').wait_for(timeout=10_000)
    assert kiosk.page.evaluate(
        "window.branchlineCall.local.getAudioTracks().every((t) => !t.enabled)"
    )
    teller.page.locator(f'{PANEL} [data-call-control="camera"]').click()
    kiosk.page.locator(f'#media {PANEL}[data-remote-video="off"]').wait_for(timeout=10_000)
    teller.page.locator(f'{PANEL} [data-call-control="camera"]').click()
    kiosk.page.locator(f'#media {PANEL}[data-remote-video="on"]').wait_for(timeout=10_000)
    kiosk.page.locator(f'#media {PANEL} [data-call-control="mute"]').click()
    teller.page.locator(f'{PANEL}[data-remote-audio="on"]').wait_for(timeout=10_000)


def ended_on(page: Page, call_id: str) -> list[object]:
    """The reasons of the page's ``branchline:call-ended`` events for ``call_id``."""
    events = call_events(page)
    return [
        e["reason"]
        for e in events
        if e["name"] == "branchline:call-ended" and e["callId"] == call_id
    ]


def _try_sign(branch: KioskBranch) -> dict[str, str] | None:
    try:
        return branch.stack.sim_act("pin_pad", "sign", name="Li Lei")
    except grpc.RpcError:
        return None  # the pad is not asking yet


def _try_take(branch: KioskBranch) -> bool:
    with contextlib.suppress(grpc.RpcError):
        branch.stack.sim_act("card_reader", "take")
        return True
    return False
