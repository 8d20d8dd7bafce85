"""Issue 13 acceptance, the other roles on the console in Chromium against real processes:
an operator's fleet board shows a printer unplugged in the simulator as offline within 5 s and
back online after replug, and the terminal's detail lists both in its device history; a teller
accepts a cross-branch task, views its materials (an image from the console's route, never in
the state; ID number partly masked) and returns a result while the origin sees "accepted" and
the result; a lobby manager designates a teller when none is idle; a teller's console refuses
to show another branch's work, and the server refuses the call too; a teller on a video call
asks the customer to sign and sees the signature image the customer drew on the terminal's
pad.
"""

# long-module: the console roles' scenarios share one stack (server, agent, simulator, Chromium); a second module would start another
from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import grpc
import pytest
from playwright.sync_api import Browser, Locator, Request

from branchline.agent.config import DEVICE_NAMES
from branchline.server import pki
from branchline.v1 import agent_local_pb2, calls_pb2, common_pb2, sim_control_pb2
from branchline.v1 import dispatch_pb2 as pb
from branchline.v1 import dispatch_pb2_grpc as pb_grpc
from tests.browser.console_support import (
    Console,
    console_process,
    console_processes,
    document_png,
)
from tests.browser.kiosk_support import KioskBranch, free_port
from tests.integration.dispatch_support import channel, origin, register_terminal, staff
from tests.integration.stack import Stack, wait_for

KIOSK = {"language": "en", "inactivity_timeout": 60}
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)
ID_NUMBER = "11010519491231002X"
PAN = "4761739001010010"
TOKEN = "tok_9f8e7d6c"


@pytest.fixture(scope="module")
def staffed(branch: KioskBranch) -> KioskBranch:
    """Branch A's mobile counter MC-1 sends to branch B: teller T1, lobby manager L1."""
    stack = branch.stack
    pki.issue_terminal_cert(stack.pki, "MC-1")
    pki.issue_user_cert(stack.pki, "teller", "T1")
    pki.issue_user_cert(stack.pki, "lobby", "L1")
    admin = pb_grpc.DispatchAdminStub(channel(stack, "operator:ops"))
    admin.AddBranch(pb.AddBranchRequest(branch_id="A", name="North"), timeout=10)
    admin.AddBranch(pb.AddBranchRequest(branch_id="B", name="South"), timeout=10)
    teller = pb.AddTellerRequest(teller_id="T1", name="Teller One", branch="B", skills=["loan"])
    admin.AddTeller(teller, timeout=10)
    lobby = pb.AddLobbyManagerRequest(manager_id="L1", name="Lobby B", branch="B")
    admin.AddLobbyManager(lobby, timeout=10)
    register_terminal(stack, "MC-1", "A", common_pb2.TERMINAL_KIND_MOBILE_COUNTER)
    return branch


def send_task(stack: Stack, request_id: str) -> pb.Task:
    counter = origin(stack)
    task = counter.SendTask(
        pb.SendTaskRequest(
            request_id=request_id,
            target_branch="B",
            business_type="loan",
            title=f"Loan application {request_id}",
            fields={"amount": "5000", "id_number": ID_NUMBER},
            customer_ref="C-778",
        ),
        timeout=10,
    )
    material = pb.UploadMaterialRequest(
        task_id=task.task_id, name="id-front.png", content_type="image/png", data=PNG
    )
    counter.UploadMaterial(material, timeout=10)
    return task


def origin_state(stack: Stack, task_id: str) -> pb.Task:
    return origin(stack).GetTask(pb.GetTaskRequest(task_id=task_id), timeout=10)


OpenConsole = Callable[[str], Console]


# The staff whose console processes the module's tests share, started together (a console
# process holds no state of its own the tests depend on: each test opens a new page). The
# operator's is started per test: the restart test starts its own on its state directory.
SHARED = ("teller:T1", "teller:BO-1", "lobby:L1")


@pytest.fixture(scope="module")
def shared_consoles(staffed: KioskBranch) -> Iterator[dict[str, str]]:
    with console_processes(staffed.stack, *SHARED) as urls:
        yield dict(zip(SHARED, urls, strict=True))


@pytest.fixture
def console_of(
    browser: Browser,
    staffed: KioskBranch,
    shared_consoles: dict[str, str],
    request: pytest.FixtureRequest,
) -> Iterator[OpenConsole]:
    """WHO's console page (its process shared, or started for the test); closed after."""
    with ExitStack() as stack:

        def open_console(who: str) -> Console:
            url = shared_consoles.get(who) or stack.enter_context(
                console_process(staffed.stack, who)
            )
            console = Console(browser, url, f"{request.node.name}-{who.replace(':', '-')}")
            stack.callback(console.close)
            return console

        yield open_console


def test_fleet_board_shows_a_printer_unplugged_within_5_s(
    console_of: OpenConsole, staffed: KioskBranch
) -> None:
    stack = staffed.stack
    ops: Console = console_of("operator:ops")
    terminal = ops.page.locator(f'tr[data-terminal="{stack.terminal_id}"]')
    terminal.wait_for(timeout=30_000)
    printer = terminal.locator('[data-device="printer"]')
    assert printer.get_attribute("data-status") == "online"
    ops.shot("fleet")
    request = sim_control_pb2.SimDeviceRequest(device="printer")
    unplugged = time.monotonic()
    stack.sim().Unplug(request, timeout=5)
    try:
        # The agent reports an unplugged printer as no_device: not online, shown as such.
        gone = terminal.locator('[data-device="printer"]:not([data-status="online"])')
        gone.wait_for(timeout=5_000)
        assert time.monotonic() - unplugged < 5
        assert gone.get_attribute("data-status") in ("no_device", "offline")
        assert "online" not in gone.inner_text()
        assert terminal.get_attribute("data-attention") == "true"
        ops.shot("printer-offline")
        # Attention first on the board; the filter keeps only those.
        rows = ops.page.locator('[data-screen="fleet"] tbody tr')
        flags = [rows.nth(i).get_attribute("data-attention") for i in range(rows.count())]
        assert flags == sorted(flags, key=lambda f: f != "true"), flags
        ops.page.locator("#fleet-status").select_option("attention")
        ops.page.locator('[data-action="fleet.filter"]').click()
        wait_for(lambda: ops.state()["fleet"]["filter"]["status"] == "attention", 10, "the filter")
        shown = [rows.nth(i).get_attribute("data-terminal") for i in range(rows.count())]
        assert stack.terminal_id in shown
        assert all(
            rows.nth(i).get_attribute("data-attention") == "true" for i in range(rows.count())
        )
        terminal.locator('[data-action="fleet.select"]').click()
        detail = ops.page.locator('[data-role="terminal-detail"]')
        detail.wait_for()
        assert "Printer" in detail.inner_text()  # the device in words, its id in data-device
        # The server's device history, newest first: the printer going away is on top.
        changes = detail.locator('tr[data-change][data-device="printer"]')
        changes.first.wait_for(timeout=5_000)
        assert changes.first.get_attribute("data-status") in ("no_device", "offline")
        ops.shot("terminal-detail")
        fleet_in_chinese(ops, terminal, changes)
    finally:
        stack.sim().Replug(request, timeout=5)
    # Back online: the detail (still open) shows it above the offline entry.
    wait_for(
        lambda: [changes.nth(i).get_attribute("data-status") for i in range(2)][0] == "online",
        15,
        "the printer back online in the terminal's history",
    )
    statuses = [changes.nth(i).get_attribute("data-status") for i in range(changes.count())]
    assert statuses[0] == "online" and statuses[1] in ("no_device", "offline"), statuses
    ops.shot("terminal-history")
    ops.page.locator("#fleet-status").select_option("")
    ops.page.locator('[data-action="fleet.filter"]').click()
    terminal.locator('[data-device="printer"][data-status="online"]').wait_for(timeout=15_000)
    ops.shot("printer-back")


def fleet_in_chinese(ops: Console, terminal: Locator, changes: Locator) -> None:
    """The board and the status changes in Chinese words (the printer unplugged): device
    names and statuses, service states; no raw id such as ``no_device`` or ``card_reader``."""
    ops.page.locator('[data-action="language"]').click()
    ops.page.locator('html[lang="zh-CN"]').wait_for(state="attached")
    try:
        printer = terminal.locator('[data-device="printer"]')
        wait_for(lambda: printer.inner_text().startswith("打印机"), 10, "the printer in Chinese")
        assert printer.inner_text().strip() in ("打印机: 无设备", "打印机: 离线")
        assert (
            terminal.locator('[data-device="card_reader"]').inner_text().strip() == "读卡器: 在线"
        )
        first = changes.first.locator("td")
        assert first.nth(1).inner_text() == "打印机"
        assert first.nth(2).inner_text() in ("无设备", "离线")
        board = ops.page.locator('[data-screen="fleet"]')
        shown = (
            board.locator("span[data-device]").all_inner_texts()
            + board.locator("[data-service]").all_inner_texts()
            + board.locator("tr[data-change] td:nth-child(2)").all_inner_texts()
            + board.locator("tr[data-change] td:nth-child(3)").all_inner_texts()
        )
        raw = DEVICE_NAMES + ("no_device", "no device", "online", "in_service", "out_of_service")
        assert [text for text in shown if any(r in text for r in raw)] == [], shown
        ops.shot("fleet-zh")
    finally:
        ops.page.locator('[data-action="language"]').click()
        ops.page.locator('html[lang="en"]').wait_for(state="attached")


def test_teller_accepts_views_materials_returns_result(
    console_of: OpenConsole, staffed: KioskBranch
) -> None:
    stack = staffed.stack
    teller: Console = console_of("teller:T1")
    teller.page.locator('[data-screen="tasks"]').wait_for(timeout=30_000)
    teller.page.locator('[data-role="duty"] [data-action="tasks.duty"]').click()
    teller.page.locator('[data-role="duty"][data-on-duty="true"]').wait_for()
    task = send_task(stack, "console-1")
    row = teller.page.locator(f'tr[data-task="{task.task_id}"][data-state="offered"]')
    row.wait_for(timeout=15_000)
    countdown = row.locator('[data-role="countdown"]')
    assert countdown.is_visible()
    teller.shot("offer")
    row.locator('[data-action="tasks.accept"]').click()
    accepted = teller.page.locator(f'tr[data-task="{task.task_id}"][data-state="accepted"]')
    accepted.wait_for(timeout=10_000)
    wait_for(
        lambda: origin_state(stack, task.task_id).state == pb.TASK_STATE_ACCEPTED,
        10,
        "the origin to see accepted",
    )
    accepted.locator('[data-action="tasks.open"]').click()
    detail = teller.page.locator(f'[data-role="task-detail"][data-task="{task.task_id}"]')
    detail.wait_for(timeout=10_000)
    image = detail.locator('img[alt="id-front.png"]')
    # Loaded from the console's route after the page rendered: wait for it.
    wait_for(
        lambda: image.evaluate("img => img.complete && img.naturalWidth") == 1, 10, "the image"
    )
    assert detail.locator('dd[data-field="id_number"]').inner_text() == "1101************2X"
    assert ID_NUMBER not in json.dumps(teller.frames)
    teller.shot("materials")
    detail.locator('input[name="reason"]').fill("approved, documents complete")
    detail.locator('[data-action="tasks.complete"]').first.click()
    teller.page.locator(f'tr[data-task="{task.task_id}"]').wait_for(state="detached")
    done = wait_for(
        lambda: (t := origin_state(stack, task.task_id)).state == pb.TASK_STATE_DONE and t,
        10,
        "the origin to see the result",
    )
    assert done.result.outcome == pb.RESULT_OUTCOME_SUCCESS
    assert done.result.reason == "approved, documents complete"
    teller.shot("result")
    # The teller's video-call screen: nobody calling this branch's tellers yet.
    teller.page.locator('[data-view-button="calls"]').click()
    teller.page.locator('[data-screen="calls"]').wait_for()
    teller.shot("calls")


# long: one task from offer to result, each thing the teller reads checked where it shows
def test_task_detail_names_fields_in_words_and_shows_each_material(
    console_of: OpenConsole, staffed: KioskBranch
) -> None:
    """The teller reads the fields by their names in words, amounts as money, ID and card
    numbers masked and a token withheld; the photo sent as the counter CLI's default type
    shows as a picture, the PDF says in words that there is no image; in Chinese too."""
    stack = staffed.stack
    teller: Console = console_of("teller:T1")
    teller.page.locator('[data-screen="tasks"]').wait_for(timeout=30_000)
    if teller.page.locator('[data-role="duty"][data-on-duty="false"]').count():
        teller.page.locator('[data-role="duty"] [data-action="tasks.duty"]').click()
    teller.page.locator('[data-role="duty"][data-on-duty="true"]').wait_for()
    fields = {
        "amount": "5000",
        "id_number": ID_NUMBER,
        "term_months": "24",
        "card_number": PAN,
        "card_token": TOKEN,
        "loan_officer": "Wang Fang",
    }
    counter = origin(stack)
    task = counter.SendTask(
        pb.SendTaskRequest(
            request_id="console-facts",
            target_branch="B",
            business_type="loan",
            title="Loan application with documents",
            fields=fields,
        ),
        timeout=10,
    )
    for name, content_type, data in (
        ("id-front.png", "application/octet-stream", document_png()),
        ("statement.pdf", "application/pdf", b"%PDF-1.7\n%%EOF\n"),
    ):
        upload = pb.UploadMaterialRequest(
            task_id=task.task_id, name=name, content_type=content_type, data=data
        )
        counter.UploadMaterial(upload, timeout=10)
    row = teller.page.locator(f'tr[data-task="{task.task_id}"][data-state="offered"]')
    row.wait_for(timeout=15_000)
    # The business in words, not its id.
    business = row.locator('td[data-role="business"]')
    assert (business.inner_text(), business.get_attribute("data-business")) == ("Loans", "loan")
    row.locator('[data-action="tasks.accept"]').click()
    accepted = teller.page.locator(f'tr[data-task="{task.task_id}"][data-state="accepted"]')
    accepted.wait_for(timeout=10_000)
    # Every request the page makes for a material image, from here on.
    loads: list[str] = []

    def on_request(request: Request) -> None:
        if "/materials/" in request.url:
            loads.append(request.url)

    teller.page.on("request", on_request)
    accepted.locator('[data-action="tasks.open"]').click()
    detail = teller.page.locator(f'[data-role="task-detail"][data-task="{task.task_id}"]')
    detail.wait_for(timeout=10_000)

    labels = detail.locator('dl[data-role="fields"] dt').all_inner_texts()
    assert sorted(labels) == sorted(
        ["Amount", "ID number", "Term (months)", "Card number", "Card token", "Loan officer"]
    ), labels
    shown = {key: detail.locator(f'dd[data-field="{key}"]').inner_text() for key in fields}
    assert shown == {
        "amount": "CNY 5,000.00",
        "id_number": "1101************2X",
        "term_months": "24",
        "card_number": "476173******0010",
        "card_token": "withheld (never shown here)",
        "loan_officer": "Wang Fang",
    }
    text = detail.inner_text()
    for key in fields:
        assert key not in text, key
    received = json.dumps(teller.frames)
    for secret in (ID_NUMBER, PAN, TOKEN):
        assert secret not in received

    image = detail.locator('figure[data-material="id-front.png"] img')
    wait_for(
        lambda: image.evaluate("img => img.complete && img.naturalWidth > 0"),
        10,
        "the document photo to load",
    )
    assert image.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [96, 60]
    # From the console's route, by its URL alone: no state the page received holds an image.
    route = f"/tasks/{task.task_id}/materials/0"
    assert image.evaluate("img => new URL(img.src).pathname") == route
    states = json.dumps([f for f in teller.frames if f.get("type") == "state"])
    assert route in states and "data:" not in states
    assert loads == [teller.url.rstrip("/") + route]
    box = image.bounding_box()
    assert box is not None and box["width"] >= 90  # shown at its size, not squeezed away
    pdf = detail.locator('figure[data-material="statement.pdf"]')
    assert pdf.locator("img").count() == 0
    assert pdf.locator('[data-role="no-image"]').inner_text() == (
        "No image to show for this material"
    )
    teller.shot("task-facts")

    # In Chinese: the same fields in Chinese words, the money as Chinese staff read it.
    teller.page.locator('[data-action="language"]').click()
    try:
        teller.page.locator('html[lang="zh-CN"]').wait_for(state="attached", timeout=10_000)
        detail.locator('dd[data-field="amount"]', has_text="5,000.00 CNY").wait_for()
        zh = detail.locator('dl[data-role="fields"] dt').all_inner_texts()
        assert {"金额", "证件号码", "期限（月）", "卡号"} <= set(zh), zh
        assert pdf.locator('[data-role="no-image"]').inner_text() == "此材料没有可显示的图像"
        accepted.locator('td[data-role="business"]', has_text="贷款").wait_for()
        teller.shot("task-facts-zh")
    finally:
        teller.page.locator('[data-action="language"]').click()
        teller.page.locator('html[lang="en"]').wait_for(state="attached", timeout=10_000)
    # Re-rendered by each state since (two languages): the image still shown, loaded once.
    detail.locator('dd[data-field="amount"]', has_text="CNY 5,000.00").wait_for()
    assert image.evaluate("img => img.complete && img.naturalWidth") == 96
    assert len(loads) == 1, loads

    # Done with it: T1 is free again for the tests after this one.
    detail.locator('input[name="reason"]').fill("documents complete")
    detail.locator('[data-action="tasks.complete"]').first.click()
    teller.page.locator(f'tr[data-task="{task.task_id}"]').wait_for(state="detached")


# long: one call from the queue to its end, the signature checked against its hash
def test_teller_sees_the_customers_signature(console_of: OpenConsole, staffed: KioskBranch) -> None:
    stack = staffed.stack
    teller: Console = console_of("teller:BO-1")
    teller.page.locator('[data-screen="backoffice"], [data-screen="tasks"]').first.wait_for(
        timeout=30_000
    )
    teller.page.locator('[data-view-button="tasks"]').click()
    if teller.page.locator('[data-role="duty"][data-on-duty="false"]').count():
        teller.page.locator('[data-role="duty"] [data-action="tasks.duty"]').click()
    teller.page.locator('[data-role="duty"][data-on-duty="true"]').wait_for()
    terminal = stack.agent_local()
    call = terminal.RequestTeller(
        agent_local_pb2.RequestTellerRequest(
            business_type="back_office", mode=calls_pb2.CALL_MODE_VIDEO_TELLER
        ),
        timeout=15,
    )
    try:
        teller.page.locator('[data-view-button="calls"]').click()
        # The branch's queue names the business in words, not its id.
        queued = teller.page.locator(f'tr[data-call="{call.call_id}"] td[data-role="business"]')
        queued.wait_for(timeout=15_000)
        assert (queued.inner_text(), queued.get_attribute("data-business")) == (
            "Back office",
            "back_office",
        )
        current = teller.page.locator(f'[data-role="current-call"][data-call="{call.call_id}"]')
        current.locator('[data-action="calls.answer"]').click(timeout=15_000)
        teller.page.locator('[data-role="current-call"][data-state="active"]').wait_for()
        teller.page.locator("#call-title").fill("I confirm the deposit")
        teller.page.locator('[data-action="calls.command"][data-kind="signature"]').click()
        asked = teller.page.locator('tr[data-kind="signature"]')
        asked.wait_for(timeout=10_000)
        command_id = int(asked.get_attribute("data-command") or 0)
        drawn, signed = customer_signs(stack, terminal, command_id)
        assert signed.completion == "success", signed
        image = teller.page.locator(f'tr[data-command="{command_id}"] img[data-role="signature"]')
        image.wait_for(timeout=10_000)
        wait_for(
            lambda: image.evaluate("img => img.complete && img.naturalWidth > 0"),
            10,
            "the signature image to load",
        )
        assert image.evaluate("img => img.naturalHeight") > 0
        shown = teller.page.evaluate(
            """async (src) => {
                const bytes = new Uint8Array(await (await fetch(src)).arrayBuffer());
                const digest = await crypto.subtle.digest("SHA-256", bytes);
                return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0"))
                    .join("");
            }""",
            image.get_attribute("src"),
        )
        assert shown == drawn["sha256"] == signed.signature_sha256
        teller.shot("signature")
        teller.page.locator('[data-action="calls.end"]').click()
        teller.page.locator('[data-role="current-call"]').wait_for(state="detached")
    finally:
        with contextlib.suppress(grpc.RpcError):  # already ended: nothing to leave
            terminal.LeaveQueue(agent_local_pb2.LeaveQueueRequest(), timeout=10)


def customer_signs(
    stack: Stack, terminal: Any, command_id: int
) -> tuple[dict[str, str], agent_local_pb2.SignResult]:
    """The customer signs on the terminal's pad for the teller's command: (what the
    simulator drew, the terminal's result)."""
    signed: dict[str, agent_local_pb2.SignResult] = {}

    def sign() -> None:
        request = agent_local_pb2.SignRequest(
            command_id=command_id, confirm=True, timeout_seconds=20
        )
        for _ in range(60):  # until the command has reached the terminal
            try:
                signed["r"] = terminal.Sign(request, timeout=60)
                return
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.FAILED_PRECONDITION:
                    raise
                time.sleep(0.25)

    signer = threading.Thread(target=sign)
    signer.start()
    drawn = wait_for(lambda: _try_sign(stack), 30, "the customer signs")
    signer.join(60)
    return drawn, signed["r"]


def _try_sign(stack: Stack) -> dict[str, str] | None:
    try:
        return stack.sim_act("pin_pad", "sign", name="Li Lei")
    except grpc.RpcError:
        return None  # the pad is not asking yet


def test_lobby_designates_when_no_teller_is_idle_and_branches_stay_apart(
    console_of: OpenConsole, staffed: KioskBranch
) -> None:
    stack = staffed.stack
    lobby: Console = console_of("lobby:L1")
    teller: Console = console_of("teller:T1")
    lobby.page.locator('[data-screen="lobby"]').wait_for(timeout=30_000)
    if lobby.page.locator('[data-role="duty"][data-on-duty="false"]').count():
        lobby.page.locator('[data-role="duty"] [data-action="lobby.duty"]').click()
    lobby.page.locator('[data-role="duty"][data-on-duty="true"]').wait_for()
    # T1 takes one task and is busy: the next waits at the lobby for a designation.
    teller.page.locator('[data-screen="tasks"]').wait_for(timeout=30_000)
    if teller.page.locator('[data-role="duty"][data-on-duty="false"]').count():
        teller.page.locator('[data-role="duty"] [data-action="tasks.duty"]').click()
    first = send_task(stack, "lobby-1")
    offered = teller.page.locator(f'tr[data-task="{first.task_id}"][data-state="offered"]')
    offered.wait_for(timeout=15_000)
    offered.locator('[data-action="tasks.accept"]').click()
    lobby.page.locator('tr[data-teller="T1"][data-presence="busy"]').wait_for(timeout=10_000)
    second = send_task(stack, "lobby-2")
    waiting = lobby.page.locator(f'tr[data-task="{second.task_id}"][data-state="at_lobby"]')
    waiting.wait_for(timeout=15_000)
    lobby.shot("waiting")
    waiting.locator('input[name="teller_id"]').fill("T1")
    waiting.locator('[data-action="lobby.designate"]').click()
    lobby.page.locator(f'tr[data-task="{second.task_id}"][data-state="offered"]').wait_for()
    teller.page.locator(f'tr[data-task="{second.task_id}"][data-state="offered"]').wait_for()
    # The teller and the offer's countdown read apart ("T1 · offer ends in 59 s").
    holder = lobby.page.locator(f'tr[data-task="{second.task_id}"] [data-role="teller"]')
    assert re.match(r"T1 · \S", holder.inner_text()), holder.inner_text()
    lobby.shot("designated")

    # Another branch's work: T1 (branch B) asks its console for branch A's task list and a
    # task it does not hold; the console refuses, naming the rule or the server's answer.
    other = send_task_to_a(stack)
    refused = teller.page.evaluate(
        """async (taskId) => {
            const ws = new WebSocket(`ws://${location.host}/ws`);
            const frames = [];
            await new Promise((ok) => ws.addEventListener("open", ok));
            ws.addEventListener("message", (e) => frames.push(JSON.parse(e.data)));
            ws.send(JSON.stringify({type: "action", action: "tasks.open", data: {task_id: taskId}}));
            ws.send(JSON.stringify({type: "action", action: "backoffice.search", data: {}}));
            for (let i = 0; i < 50 && frames.filter((f) => f.type === "refused").length < 2; i++)
                await new Promise((ok) => setTimeout(ok, 100));
            ws.close();
            return frames.filter((f) => f.type === "refused");
        }""",
        other.task_id,
    )
    assert [r["action"] for r in refused] == ["tasks.open", "backoffice.search"], refused
    assert refused[0]["status"] in ("PERMISSION_DENIED", "NOT_FOUND"), refused
    assert (refused[1]["status"], refused[1]["reason"]) == ("PERMISSION_DENIED", "role_view")
    assert other.task_id not in json.dumps(teller.state().get("tasks"))
    with pytest.raises(grpc.RpcError) as caught:
        staff(stack, "teller:T1").GetTask(pb.GetTaskRequest(task_id=other.task_id), timeout=10)
    assert caught.value.code() in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.NOT_FOUND)
    teller.shot("refused")


def send_task_to_a(stack: Stack) -> pb.Task:
    """A task for branch A (MC-1's own branch), which T1 of branch B has nothing to do with."""
    return origin(stack).SendTask(
        pb.SendTaskRequest(
            request_id="for-a", target_branch="A", business_type="loan", title="Branch A work"
        ),
        timeout=10,
    )


def test_page_comes_back_by_itself_after_the_console_restarts(
    browser: Browser, staffed: KioskBranch
) -> None:
    """The console process stops and starts again on the same address: the open page says it
    is reconnecting, then shows the state again without a reload."""
    port = free_port()
    with console_process(staffed.stack, "operator:ops", port=port) as url:
        ops = Console(browser, url, "page-reconnects")
    try:
        # The process is gone: the page says so (in words, not only colour).
        ops.page.locator('[data-role="connection"][data-state="connecting"]').wait_for(
            state="attached", timeout=10_000
        )
        assert ops.page.locator('[data-role="connection"]').inner_text() != ""
        ops.shot("reconnecting")
        navigations: list[str] = []
        ops.page.on("framenavigated", lambda frame: navigations.append(frame.url))
        with console_process(staffed.stack, "operator:ops", port=port):
            ops.page.locator('[data-role="connection"][data-state="connected"]').wait_for(
                state="attached", timeout=15_000
            )
            ops.page.locator(f'tr[data-terminal="{staffed.stack.terminal_id}"]').wait_for(
                timeout=15_000
            )
            assert navigations == []  # no reload: the page reconnected by itself
            ops.shot("reconnected")
    finally:
        ops.close()
