"""WebRTC in the browser tests and the bench: Chromium with a fake camera and microphone
(a test pattern and a beep), permission granted without a prompt, and helpers reading a page's
call (``window.branchlineCall``, docs/flows/calls.md "Media")."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from branchline.server import pki
from branchline.v1 import dispatch_pb2 as dpb
from branchline.v1 import dispatch_pb2_grpc as dpb_grpc
from tests.browser.console_support import Console
from tests.browser.kiosk_support import CHROMIUM, CHROMIUM_ARGS
from tests.integration.stack import Stack
from tests.integration.tube_support import BRANCH

MEDIA_ARGS = [
    *CHROMIUM_ARGS,
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    # Both pages run on this machine: let ICE pair loopback candidates too.
    "--allow-loopback-in-peer-connection",
]

# Frames of inbound video the page's peer connection decoded (0 without a call):
# window.branchlineCall (a video call) or window.branchlineDesk (the back office's video).
FRAMES_DECODED = """async (holder) => {
  const pc = window[holder] && window[holder].pc;
  if (!pc) return 0;
  let frames = 0;
  (await pc.getStats()).forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "video") frames += s.framesDecoded || 0;
  });
  return frames;
}"""

# Collects the page's call events (branchline:call-streams / call-ended) in window.__callEvents.
RECORD_EVENTS = """
window.__callEvents = [];
for (const name of ["branchline:call-streams", "branchline:call-ended"]) {
  window.addEventListener(name, (e) => window.__callEvents.push({
    name, callId: e.detail.callId, side: e.detail.side, reason: e.detail.reason || "",
    local: e.detail.local ? e.detail.local.getTracks().length : 0,
    remote: e.detail.remote ? e.detail.remote.getTracks().length : 0 }));
}
"""


def launch_media_chromium(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=MEDIA_ARGS)


@contextmanager
def media_browser() -> Iterator[Browser]:
    """A module's Chromium with the fake camera and microphone (Playwright's sync API holds an
    event loop in this thread while open: one per module, see conftest.py's ``browser``)."""
    with sync_playwright() as playwright:
        chromium = launch_media_chromium(playwright)
        try:
            yield chromium
        finally:
            chromium.close()


def frames_decoded(page: Page, holder: str = "branchlineCall") -> int:
    return int(page.evaluate(FRAMES_DECODED, holder))


def call_events(page: Page) -> list[dict[str, object]]:
    return list(page.evaluate("window.__callEvents || []"))


def add_video_teller(stack: Stack, teller_id: str, skills: tuple[str, ...] = ("other",)) -> None:
    """A teller of the kiosk branch's terminal's branch with ``skills`` and a certificate."""
    pki.issue_user_cert(stack.pki, "teller", teller_id)
    admin = dpb_grpc.DispatchAdminStub(stack.operator_channel())
    request = dpb.AddTellerRequest(
        teller_id=teller_id, name=f"Video {teller_id}", branch=BRANCH, skills=list(skills)
    )
    admin.AddTeller(request, timeout=10)


def teller_on_calls(console: Console) -> None:
    """The teller goes on duty in the console and opens the calls view."""
    page = console.page
    page.locator('[data-screen="tasks"]').wait_for(timeout=30_000)
    page.locator('[data-role="duty"] [data-action="tasks.duty"]').click()
    page.locator('[data-role="duty"][data-on-duty="true"]').wait_for()
    page.locator('[data-view-button="calls"]').click()
    page.locator('[data-screen="calls"]').wait_for()
