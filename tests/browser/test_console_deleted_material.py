"""A material the server's retention deleted, on a teller's console in Chromium against real
processes: the teller had a task's detail open when the task ended; once the server's
retention deleted its materials (a server restarted with a retention of under a second, its
sweep running at start) the page, loaded again, says in words when and why each went, in
English and Chinese, with no image left on it (none broken); the console's route for the
photo answers 409 ``material_deleted`` in JSON.

Its own small stack (a server and the teller's console, no agent nor kiosk): the test
restarts the server, and a retention that short would delete the materials of every task
the other console tests end (docs/flows/dispatch.md "materials", docs/console.md).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator

from branchline.server import pki
from branchline.server.console.i18n import format_time
from branchline.v1 import common_pb2
from branchline.v1 import dispatch_pb2 as pb
from branchline.v1 import dispatch_pb2_grpc as pb_grpc
from tests.browser.console_support import Console, console_process, document_png
from tests.browser.kiosk_support import free_port
from tests.integration.dispatch_support import channel, origin, register_terminal, staff
from tests.integration.stack import Stack, wait_for

# 0.86 s: any task ended before the server (re)starts has its materials deleted at start.
RETENTION_DAYS = "0.00001"
PDF = b"%PDF-1.7\n%%EOF\n"
EN_DELETED = "the bank keeps a task's materials only for a set time after the task ended"
ZH_DELETED = "任务结束后，材料只保留规定的时间"


def server_args(port: int) -> list[str]:
    """On a fixed port (the console's --target survives a restart), the short retention."""
    return ["--listen", f"127.0.0.1:{port}", "--material-retention-days", RETENTION_DAYS]


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """A server with branches A and B, teller T1 of B, mobile counter MC-1 of A."""
    root = Path(tempfile.mkdtemp(prefix="bl-dm-", dir="/tmp"))
    started = Stack(root, shutdown_drain=0)
    started.init_pki()
    pki.issue_terminal_cert(started.pki, "MC-1")
    pki.issue_user_cert(started.pki, "teller", "T1")
    try:
        started.start_server(server_args(free_port()))
        admin = pb_grpc.DispatchAdminStub(channel(started, "operator:ops"))
        admin.AddBranch(pb.AddBranchRequest(branch_id="A", name="North"), timeout=10)
        admin.AddBranch(pb.AddBranchRequest(branch_id="B", name="South"), timeout=10)
        teller = pb.AddTellerRequest(teller_id="T1", name="Teller One", branch="B", skills=["loan"])
        admin.AddTeller(teller, timeout=10)
        register_terminal(started, "MC-1", "A", common_pb2.TERMINAL_KIND_MOBILE_COUNTER)
        yield started
    finally:
        started.stop_all()
        shutil.rmtree(root, ignore_errors=True)


def restart_server(stack: Stack) -> None:
    """Stop the server and start it again on the same port and database, as a deploy does."""
    port = stack.server_port
    stack.procs["server"].stop()
    stack.start_server(server_args(port))


def ended_task_with_detail_open(stack: Stack, teller: Console) -> pb.Task:
    """A loan task with an ID photo and a PDF, accepted by T1, opened (the photo showing),
    then completed: its detail stays open, the task done."""
    page = teller.page
    page.locator('[data-screen="tasks"]').wait_for(timeout=30_000)
    page.locator('[data-role="duty"] [data-action="tasks.duty"]').click()
    page.locator('[data-role="duty"][data-on-duty="true"]').wait_for()
    counter = origin(stack)
    task = counter.SendTask(
        pb.SendTaskRequest(
            request_id="deleted-1",
            target_branch="B",
            business_type="loan",
            title="Loan application with documents",
            fields={"amount": "5000"},
        ),
        timeout=10,
    )
    for name, content_type, data in (
        ("id-front.png", "image/png", document_png()),
        ("statement.pdf", "application/pdf", PDF),
    ):
        upload = pb.UploadMaterialRequest(
            task_id=task.task_id, name=name, content_type=content_type, data=data
        )
        counter.UploadMaterial(upload, timeout=10)
    row = page.locator(f'tr[data-task="{task.task_id}"][data-state="offered"]')
    row.wait_for(timeout=15_000)
    row.locator('[data-action="tasks.accept"]').click()
    accepted = page.locator(f'tr[data-task="{task.task_id}"][data-state="accepted"]')
    accepted.wait_for(timeout=10_000)
    accepted.locator('[data-action="tasks.open"]').click()
    detail = page.locator(f'[data-role="task-detail"][data-task="{task.task_id}"]')
    image = detail.locator('figure[data-material="id-front.png"] img')
    wait_for(
        lambda: image.evaluate("img => img.complete && img.naturalWidth") == 96,
        10,
        "the document photo to load",
    )
    teller.shot("before")
    detail.locator('input[name="reason"]').fill("documents complete")
    detail.locator('[data-action="tasks.complete"]').first.click()
    page.locator(f'tr[data-task="{task.task_id}"]').wait_for(state="detached")
    detail.locator("p", has_text="done").first.wait_for(timeout=10_000)
    return task


def deleted_on_the_server(stack: Stack, task_id: str) -> dict[str, str]:
    """Each material's deletion time as the server lists it (as the console formats it),
    once the restarted server's sweep has deleted both."""

    def listed() -> dict[str, str] | None:
        task = staff(stack, "teller:T1").GetTask(pb.GetTaskRequest(task_id=task_id), timeout=10)
        when = {
            m.name: format_time(m.deleted_at.ToDatetime(tzinfo=UTC))
            if m.HasField("deleted_at")
            else ""
            for m in task.materials
        }
        return when if len(when) == 2 and all(when.values()) else None

    found: dict[str, str] = wait_for(listed, 20, "the retention to delete the materials", 0.3)
    return found


def route_answer(teller: Console, task_id: str, index: int) -> tuple[int, dict[str, Any]]:
    """The console's material route as the page's own origin asks it."""
    answer: list[Any] = teller.page.evaluate(
        """async (path) => {
             const r = await fetch(path);
             return [r.status, await r.text()];
           }""",
        f"/tasks/{task_id}/materials/{index}",
    )
    return int(answer[0]), json.loads(answer[1])


def server_went(teller: Console, since: int) -> bool:
    """Whether a state the page received after frame ``since`` says the server is gone."""
    teller.page.wait_for_timeout(1)  # Playwright delivers the page's frames while it runs
    return any(f.get("server") == "connecting" for f in teller.frames[since:])


def no_image_shown(detail: Locator) -> None:
    """No <img> in the detail, and none anywhere on the page that failed to load."""
    assert detail.locator("img").count() == 0
    broken = detail.page.evaluate(
        "() => [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).length"
    )
    assert broken == 0


# long: one task from its open detail to the deleted wording in both languages
def test_a_material_the_retention_deleted_reads_as_deleted_in_both_languages(
    browser: Browser, stack: Stack, request: pytest.FixtureRequest
) -> None:
    with console_process(stack, "teller:T1") as url:
        teller = Console(browser, url, request.node.name)
        try:
            task = ended_task_with_detail_open(stack, teller)
            before = len(teller.frames)
            restart_server(stack)
            when = deleted_on_the_server(stack, task.task_id)
            # The console lost the server and follows it again (its stream resumed) before
            # the page loads: its image reads then reach the restarted server.
            wait_for(lambda: server_went(teller, before), 10, "the console to see the server go")
            online = '[data-role="server"][data-state="online"]'
            teller.page.locator(online).wait_for(state="attached", timeout=30_000)
            loads: list[tuple[str, int]] = []
            teller.page.on(
                "response",
                lambda r: loads.append((r.url, r.status)) if "/materials/" in r.url else None,
            )
            # The teller comes back to the page: the task still open on the console, done.
            teller.page.reload()
            detail = teller.page.locator(f'[data-role="task-detail"][data-task="{task.task_id}"]')
            detail.wait_for(timeout=10_000)
            photo = detail.locator('figure[data-material="id-front.png"]')
            deleted = photo.locator('[data-role="material-deleted"]')
            deleted.wait_for(timeout=10_000)
            assert deleted.inner_text() == f"Deleted on {when['id-front.png']}: {EN_DELETED}"
            assert photo.get_attribute("data-image") == "false"
            # The PDF (never an image, never read by the route) went by the same sweep: the
            # console, told of one deletion, asks the server which others it deleted.
            pdf = detail.locator('figure[data-material="statement.pdf"]')
            pdf_deleted = pdf.locator('[data-role="material-deleted"]')
            pdf_deleted.wait_for(timeout=10_000)
            assert pdf_deleted.inner_text() == f"Deleted on {when['statement.pdf']}: {EN_DELETED}"
            assert pdf.get_attribute("data-image") == "false"
            assert pdf.locator('[data-role="no-image"]').count() == 0
            assert "id-front.png (image/png)" in photo.inner_text()
            no_image_shown(detail)
            # The page asked for the photo once (as the state had it) and was told no.
            route = url.rstrip("/") + f"/tasks/{task.task_id}/materials/0"
            assert loads == [(route, 409)], loads
            status, body = route_answer(teller, task.task_id, 0)
            assert status == 409, body
            assert (body["status"], body["reason"], body["field"]) == (
                "FAILED_PRECONDITION",
                "material_deleted",
                "index",
            )
            assert "(id-front.png) was deleted" in body["message"]
            teller.shot("deleted")

            teller.page.locator('[data-action="language"]').click()
            teller.page.locator('html[lang="zh-CN"]').wait_for(state="attached", timeout=10_000)
            zh = f"已于 {when['id-front.png']} 删除：{ZH_DELETED}"
            photo.locator('[data-role="material-deleted"]', has_text=zh).wait_for(timeout=10_000)
            assert deleted.inner_text() == zh
            assert "Deleted" not in detail.inner_text()
            no_image_shown(detail)
            teller.shot("deleted-zh")
            teller.page.locator('[data-action="language"]').click()
            teller.page.locator('html[lang="en"]').wait_for(state="attached", timeout=10_000)
            # Only the page's one request and the test's: the words need no image.
            assert loads == [(route, 409), (route, 409)], loads
        finally:
            teller.close()
