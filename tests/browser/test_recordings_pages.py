"""Issue 14 recordings through the pages, real processes, Chromium with a fake camera
(``--use-fake-device-for-media-stream --use-fake-ui-for-media-stream``).

A tube deposit through the kiosk page, the carrier received and counted on the clerk's
console page: the kiosk camera is recorded for the whole transaction and the back-office
camera while the clerk handles the carrier; both recordings reach the server, decode with
PyAV to about the time they were recorded, seek, and the kiosk's is in the terminal's
e-journal (``branchline-diag journal verify`` passes). The receipt's reference opens them for
the customer at the terminal ("my recordings", played in a <video> that seeks with Range)
and is refused for another card; the clerk's viewing in the console is in the audit. Both
sides of a video call are recorded on the calls module's window events (a synthetic stream).
A withdrawal's carrier is recorded in the back office from "prepare" until it is sent. A
lobby manager puts a recording on legal hold and lifts it from the console, with a reason
(audited); the back office cannot.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from playwright.sync_api import Browser, Page

from branchline.server import pki
from branchline.v1 import dispatch_pb2 as dpb
from branchline.v1 import dispatch_pb2_grpc as dpb_grpc
from branchline.v1 import recordings_pb2 as pb
from branchline.v1 import recordings_pb2_grpc as pb_grpc
from tests.browser.back_office import station_status
from tests.browser.console_support import Console, console_processes
from tests.browser.kiosk_support import Kiosk, KioskBranch
from tests.browser.media_support import media_browser
from tests.browser.recordings_support import audit_of
from tests.browser.tube_pages_support import (
    CARRIERS,
    carrier_arrives,
    count_notes,
    fill_deposit,
    finish_tube,
    load_and_send,
    tube_step,
)
from tests.integration.stack import Stack, wait_for
from tests.integration.tube_support import CLERK
from tests.unit.recording_media import probe

pytestmark = pytest.mark.timeout(300)
# A recording whose page went away is closed by the agent after this many idle seconds.
KIOSK = {"language": "en", "inactivity_timeout": 120, "recording_idle_seconds": 4}
CUSTOMER_TIMEOUT = 60
RETRYABLE = (
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium with a fake camera and microphone, allowed without asking."""
    with media_browser() as chromium:
        yield chromium


LOBBY = "L-REC"


@pytest.fixture(scope="module")
def console_urls(branch: KioskBranch) -> Iterator[tuple[str, str]]:
    """The clerk's console and that of a lobby manager of the terminal's branch (sets and
    lifts legal holds), started together."""
    stack = branch.stack
    pki.issue_user_cert(stack.pki, "lobby", LOBBY)
    dpb_grpc.DispatchAdminStub(stack.operator_channel()).AddLobbyManager(
        dpb.AddLobbyManagerRequest(manager_id=LOBBY, name="Lobby", branch=stack.branch),
        timeout=10,
    )
    with console_processes(stack, f"teller:{CLERK}", f"lobby:{LOBBY}") as (clerk, lobby):
        yield clerk, lobby


@pytest.fixture(scope="module")
def console_url(console_urls: tuple[str, str]) -> str:
    return console_urls[0]


@pytest.fixture(scope="module")
def lobby_url(console_urls: tuple[str, str]) -> str:
    return console_urls[1]


@pytest.fixture
def clerk(browser: Browser, console_url: str, request: pytest.FixtureRequest) -> Iterator[Console]:
    console = Console(browser, console_url, request.node.name)
    try:
        console.page.locator('[data-screen="backoffice"]').wait_for(timeout=30_000)
        yield console
    finally:
        console.close()


def stored(stack: Stack, txn_ref: str, count: int) -> list[pb.Recording]:
    """The transaction's recordings on the server (as the operator), once ``count`` are."""
    stub = pb_grpc.RecordingsStub(stack.operator_channel())
    try:
        found = stub.ListRecordings(pb.ListRecordingsRequest(txn_ref=txn_ref), timeout=5)
    except grpc.RpcError as exc:
        if exc.code() in RETRYABLE:  # type: ignore[attr-defined]
            return []
        raise
    return list(found.recordings) if len(found.recordings) >= count else []


def fetch(stack: Stack, rec: pb.Recording, out: Path) -> Path:
    stub = pb_grpc.RecordingsStub(stack.operator_channel())
    with out.open("wb") as f:
        for piece in stub.FetchRecording(
            pb.FetchRecordingRequest(sha256=rec.sha256, txn_ref=rec.txn_ref), timeout=30
        ):
            f.write(piece.data)
    return out


def page_recordings(page: Page) -> list[dict[str, Any]]:
    """The recordings this page stopped: their state, answer and how long they ran."""
    found: list[dict[str, Any]] = page.evaluate(
        """() => (globalThis.branchlineRecordings?.stopped ?? []).map((r) => ({
            id: r.id, state: r.state, meta: r.meta, result: r.result, error: r.error,
            seconds: r.stoppedAt && r.startedAt ? (r.stoppedAt - r.startedAt) / 1000 : 0 }))"""
    )
    return found


def closed_on(page: Page, source: str, txn_ref: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        for r in page_recordings(page):
            if r["meta"]["source"] == source and r["meta"]["txn_ref"] == txn_ref:
                assert r["state"] != "failed", r
                return r if r["state"] == "closed" else None
        return None

    return wait_for(done, 30, f"the {source} recording closed by its page", 0.2)  # type: ignore[no-any-return]


def check_decodes(stack: Stack, rec: pb.Recording, seconds: float, name: str) -> None:
    """PyAV reads the stored file: about ``seconds`` long (the page's wall clock from start
    to stop; the first frame comes a moment after the start and a loaded machine delivers
    the last ones late, so the video runs a little shorter), seekable, frames decoded."""
    duration, frames = probe(str(fetch(stack, rec, stack.root / name)))
    assert frames > 0, name
    assert 0.6 * seconds - 1.0 <= duration <= seconds + 1.0, (name, duration, seconds)
    assert abs(rec.duration_seconds - duration) < 0.5


def recording_indicator(page: Page, state: str) -> None:
    page.locator(f'[data-role="recording"][data-state="{state}"]').wait_for(
        state="attached", timeout=15_000
    )


def watch_at_terminal(kiosk: Kiosk, sha: str) -> None:
    """On "my recordings": play ``sha`` in the <video>; it loads, knows its length, seeks."""
    kiosk.wait_screen("my_recordings", until=lambda d: len(d.get("recordings", [])) >= 2)
    kiosk.choose("play", sha)
    video = kiosk.page.locator('#media video[data-role="recording-video"]')
    video.wait_for(state="attached", timeout=10_000)
    duration = kiosk.page.wait_for_function(
        """() => { const v = document.querySelector('video[data-role="recording-video"]');
                   return v && v.readyState >= 1 && isFinite(v.duration) && v.duration > 0
                          && v.duration; }""",
        timeout=20_000,
    ).json_value()
    kiosk.page.evaluate(
        """(to) => new Promise((done) => {
            const v = document.querySelector('video[data-role="recording-video"]');
            v.addEventListener("seeked", done, { once: true });
            v.currentTime = to; })""",
        float(duration) / 2,
    )
    kiosk.shot("my-recordings-playing")


# long: one end-to-end scenario over two pages and the server, step by step
def test_a_deposit_is_recorded_on_both_pages_stored_and_opened_for_its_customer_only(
    kiosk: Kiosk, clerk: Console
) -> None:
    stack = kiosk.stack
    kiosk.sign_in("deposit")
    fill_deposit(kiosk, "C1-CNY", "CNY", "120.00")
    # The kiosk camera records from the start of the transaction (the agent says so).
    kiosk.wait_screen("tube", until=tube_step("load_carrier"))
    recording_indicator(kiosk.page, "recording")
    load_and_send(kiosk)
    txn_id = carrier_arrives(kiosk, clerk)
    # The clerk received it: the back-office camera records until the count is in.
    recording_indicator(clerk.page, "recording")
    clerk.page.wait_for_timeout(3000)
    count_notes(clerk, txn_id, {"100": "1", "20": "1"}, "120.00")
    clerk.row(txn_id, "counted")
    recording_indicator(clerk.page, "idle")
    kiosk.wait_screen("tube", timeout=30, until=tube_step("decide"))
    kiosk.click("confirm")
    done = kiosk.wait_screen("tube", timeout=60, until=lambda d: bool(d.get("finished")))
    assert done["outcome"] == "completed" and done["record"] is None
    recording_indicator(kiosk.page, "idle")
    reference = done["reference"]
    assert reference in kiosk.page.locator('[data-role="recorded"]').inner_text()

    at_kiosk = closed_on(kiosk.page, "kiosk", txn_id)
    at_desk = closed_on(clerk.page, "backoffice", txn_id)
    recs = wait_for(lambda: stored(stack, txn_id, 2), 90, "both recordings on the server")
    by_source = {r.source: r for r in recs}
    assert set(by_source) == {"kiosk", "backoffice"}
    assert by_source["kiosk"].sha256 == at_kiosk["result"]["sha256"]
    assert by_source["backoffice"].sha256 == at_desk["result"]["sha256"]
    assert all(r.kind == "tube" and r.txn_ref == txn_id for r in recs)
    check_decodes(stack, by_source["kiosk"], at_kiosk["seconds"], "kiosk.webm")
    check_decodes(stack, by_source["backoffice"], at_desk["seconds"], "backoffice.webm")
    # The kiosk's recording is in the terminal's hash-chained e-journal, which verifies.
    assert stack.diag("journal", "verify").returncode == 0
    journal = json.dumps(json.loads(stack.diag("journal", "show", "--json").stdout))
    assert by_source["kiosk"].sha256 in journal

    # The customer, still signed in, watches it from the result screen.
    kiosk.click("recordings")
    watch_at_terminal(kiosk, by_source["kiosk"].sha256)
    ranges = [status for url, status, _ in kiosk.received.responses if "/recordings/mine/" in url]
    assert 206 in ranges or 200 in ranges, ranges
    kiosk.click("back")
    kiosk.finish()

    # Another card: the same reference is refused.
    kiosk.sign_in("recordings", card="magstripe")
    kiosk.wait_screen("my_recordings")
    kiosk.fill("reference", reference)
    kiosk.click("lookup")
    refused = kiosk.wait_screen("my_recordings", until=lambda d: bool(d.get("refusal")))
    assert refused["refusal"] == "own_recordings_only" and refused["recordings"] == []
    kiosk.page.locator(
        '[data-role="recordings-refusal"][data-reason="own_recordings_only"]'
    ).wait_for()
    kiosk.click("back")
    kiosk.finish()

    # The clerk watches it in the console: the search and the viewing are audited.
    sha = by_source["kiosk"].sha256
    clerk.page.locator('[data-view-button="recordings"]').click()
    clerk.page.locator('[data-screen="recordings"] input[name="reference"]').fill(reference)
    clerk.page.locator('[data-action="recordings.search"]').click()
    row = clerk.page.locator(f'tr[data-recording="{sha}"]')
    row.wait_for(timeout=15_000)
    row.locator('[data-action="recordings.play"]').click()
    clerk.page.wait_for_function(
        """() => { const v = document.querySelector('video[data-role="recording-video"]');
                   return v && v.readyState >= 1 && v.duration > 0; }""",
        timeout=20_000,
    )
    clerk.shot("recordings-playing")
    audit = audit_of(stack, sha)
    assert (f"teller {CLERK}", "listed") in audit and (f"teller {CLERK}", "viewed") in audit
    customer_views = [a for a in audit if a[1] == "viewed" and "customer" in a[0]]
    assert customer_views, audit


SYNTHETIC_CALL = """(callId) => {
    function stream(colour) {
      const canvas = document.createElement("canvas");
      canvas.width = 160; canvas.height = 120;
      const g = canvas.getContext("2d");
      let n = 0;
      setInterval(() => { g.fillStyle = colour; g.fillRect(0, 0, 160, 120);
        g.fillStyle = "white"; g.fillText(String(n++), 10, 60); }, 40);
      return canvas.captureStream(25);
    }
    window.dispatchEvent(new CustomEvent("branchline:call-streams",
      { detail: { callId, local: stream("navy"), remote: stream("darkred") } }));
}"""


def test_both_sides_of_a_call_are_recorded_on_the_call_events(kiosk: Kiosk) -> None:
    stack = kiosk.stack
    call_id = "CALL-REC-1"
    kiosk.page.evaluate(SYNTHETIC_CALL, call_id)
    recording_indicator(kiosk.page, "recording")
    assert kiosk.page.locator('[data-role="recording"]').get_attribute("data-count") == "2"
    kiosk.page.wait_for_timeout(3000)
    kiosk.page.evaluate(
        """(callId) => window.dispatchEvent(
            new CustomEvent("branchline:call-ended", { detail: { callId } }))""",
        call_id,
    )
    local = closed_on(kiosk.page, "kiosk", call_id)
    remote = closed_on(kiosk.page, "teller", call_id)
    recs = wait_for(lambda: stored(stack, call_id, 2), 90, "both sides on the server")
    by_source = {r.source: r for r in recs}
    assert {r.kind for r in recs} == {"call"}
    check_decodes(stack, by_source["kiosk"], local["seconds"], "call-local.webm")
    check_decodes(stack, by_source["teller"], remote["seconds"], "call-remote.webm")


RUNNING_ID = "() => [...globalThis.branchlineRecordings.recordings.values()].map((r) => r.id)"


def test_a_reload_mid_transaction_keeps_what_was_recorded(kiosk: Kiosk) -> None:
    """The page goes away mid-transaction: what it posted is kept and closed by the agent
    (after ``recording_idle_seconds``); the page back on the same transaction records anew."""
    stack = kiosk.stack
    kiosk.sign_in("deposit")
    fill_deposit(kiosk, "C1-CNY", "CNY", "80.00")
    data = kiosk.wait_screen("tube", until=tube_step("load_carrier"))
    txn_id = data["record"]["txn_ref"]
    recording_indicator(kiosk.page, "recording")
    kiosk.page.wait_for_timeout(3000)
    [first] = kiosk.page.evaluate(RUNNING_ID)
    kiosk.page.reload()
    kiosk.wait_screen("tube", until=tube_step("load_carrier"))
    recording_indicator(kiosk.page, "recording")
    [second] = kiosk.page.evaluate(RUNNING_ID)
    assert second != first
    kiosk.page.wait_for_timeout(2000)
    kiosk.click("cancel")
    done = kiosk.wait_screen("tube", timeout=30, until=lambda d: bool(d.get("finished")))
    assert done["outcome"] == "canceled"
    closed_on(kiosk.page, "kiosk", txn_id)
    kiosk.click("done")
    kiosk.finish()
    recs = wait_for(lambda: stored(stack, txn_id, 2), 90, "both parts on the server")
    assert {r.recording_id for r in recs} == {first, second}
    for rec in recs:
        duration, frames = probe(str(fetch(stack, rec, stack.root / f"{rec.recording_id}.webm")))
        assert frames > 0 and duration > 1.0, (rec.recording_id, duration)


def test_a_withdrawal_carrier_is_recorded_in_the_back_office_while_prepared(
    kiosk: Kiosk, clerk: Console
) -> None:
    stack = kiosk.stack
    kiosk.sign_in("withdrawal")
    kiosk.wait_screen("withdrawal_form")
    kiosk.fill("account_id", "C1-CNY")
    kiosk.fill("currency", "USD")
    kiosk.fill("amount", "20.00")
    kiosk.click("quote")
    kiosk.wait_screen("withdrawal_quote")
    kiosk.click("submit")
    waiting = kiosk.wait_screen("tube", until=lambda d: d.get("kind") == "withdrawal")
    txn_id = waiting["record"]["txn_ref"]
    row = clerk.row(txn_id, "open")
    recording_indicator(clerk.page, "idle")  # not in anyone's hands yet
    # The clerk starts loading the carrier: the back-office camera records from now.
    row.locator('[data-action="backoffice.prepare"]').click()
    recording_indicator(clerk.page, "recording")
    clerk.shot("withdrawal-prepared")
    clerk.page.wait_for_timeout(3000)
    carrier = str(CARRIERS.take())
    row = clerk.row(txn_id, "open")
    row.locator('input[name="carrier_id"]').fill(carrier)
    row.locator('[data-action="backoffice.send"]').click()
    clerk.row(txn_id, "dispatched")
    recording_indicator(clerk.page, "idle")
    at_desk = closed_on(clerk.page, "backoffice", txn_id)
    stack.sim_act("tube_station", "backoffice_send", carrier_id=carrier)
    wait_for(lambda: station_status(stack).get("terminal_door") == "open", 20, "the door")
    kiosk.wait_screen("tube", until=tube_step("take_carrier"))
    stack.sim_act("tube_station", "remove")
    kiosk.wait_screen("tube", until=tube_step("confirm_receipt"))
    kiosk.click("confirm_receipt")
    finish_tube(kiosk, "completed")
    kiosk.finish()
    at_kiosk = closed_on(kiosk.page, "kiosk", txn_id)
    recs = wait_for(lambda: stored(stack, txn_id, 2), 90, "both recordings on the server")
    by_source = {r.source: r for r in recs}
    assert set(by_source) == {"kiosk", "backoffice"}
    assert all(r.kind == "tube" and r.txn_ref == txn_id for r in recs)
    assert by_source["backoffice"].sha256 == at_desk["result"]["sha256"]
    assert by_source["kiosk"].sha256 == at_kiosk["result"]["sha256"]
    check_decodes(stack, by_source["backoffice"], at_desk["seconds"], "withdrawal-bo.webm")


def search_recordings(console: Console, reference: str, sha: str) -> Any:
    console.page.locator('[data-view-button="recordings"]').click()
    console.page.locator('[data-screen="recordings"] input[name="reference"]').fill(reference)
    console.page.locator('[data-action="recordings.search"]').click()
    row = console.page.locator(f'tr[data-recording="{sha}"]')
    row.wait_for(timeout=15_000)
    return row


def test_a_lobby_manager_holds_a_recording_and_lifts_the_hold_with_a_reason(
    kiosk: Kiosk, browser: Browser, lobby_url: str, clerk: Console
) -> None:
    stack = kiosk.stack
    call_id = "CALL-HOLD-1"
    kiosk.page.evaluate(SYNTHETIC_CALL, call_id)
    recording_indicator(kiosk.page, "recording")
    kiosk.page.wait_for_timeout(1500)
    kiosk.page.evaluate(
        """(callId) => window.dispatchEvent(
            new CustomEvent("branchline:call-ended", { detail: { callId } }))""",
        call_id,
    )
    closed_on(kiosk.page, "kiosk", call_id)
    recs = wait_for(lambda: stored(stack, call_id, 2), 90, "the call on the server")
    sha = next(r.sha256 for r in recs if r.source == "kiosk")

    # The back office sees the recordings but cannot hold them.
    row = search_recordings(clerk, call_id, sha)
    assert row.locator('[data-role="hold-control"]').count() == 0

    lobby = Console(browser, lobby_url, "legal-hold")
    try:
        row = search_recordings(lobby, call_id, sha)
        assert row.get_attribute("data-held") == "false"

        # No reason: refused, naming the field; nothing held. (Pressed again if the press
        # landed on a row the lobby's two-second refresh was replacing.)
        def refused() -> bool:
            if any(r.get("field") == "reason" for r in lobby.refusals()):
                return True
            row.locator('[data-action="recordings.hold"]').click()
            return False

        wait_for(refused, 30, "the refusal naming the reason", 2.0)
        assert row.get_attribute("data-held") == "false"
        row.locator('input[name="reason"]').fill("Dispute 2026-118, customer complaint")
        row.locator('[data-action="recordings.hold"]').click()
        held = lobby.page.locator(f'tr[data-recording="{sha}"][data-held="true"]')
        held.wait_for(timeout=10_000)
        assert "Dispute 2026-118" in held.locator('[data-role="hold-reason"]').inner_text()
        assert held.locator('input[name="reason"]').input_value() == ""  # not carried over
        lobby.shot("held")
        listed = {r.sha256: r for r in stored(stack, call_id, 2)}
        assert listed[sha].legal_hold and listed[sha].hold_reason.startswith("Dispute 2026-118")
        held.locator('input[name="reason"]').fill("Dispute 2026-118 closed")
        held.locator('[data-action="recordings.release"]').click()
        lobby.page.locator(f'tr[data-recording="{sha}"][data-held="false"]').wait_for(
            timeout=10_000
        )
    finally:
        lobby.close()
    audit = audit_of(stack, sha)
    assert (f"lobby {LOBBY}", "hold") in audit and (f"lobby {LOBBY}", "release") in audit
    assert audit.index((f"lobby {LOBBY}", "hold")) < audit.index((f"lobby {LOBBY}", "release"))
