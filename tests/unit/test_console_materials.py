"""A task's material images from the console's own route (materials_web.py), against a real
server: the state names each image by its URL and carries no bytes; the route serves the
image to the teller who holds the task, typed by its bytes (the counter CLI's default
octet-stream is still a PNG), not kept by the browser nor the console: each read is one from
the server, audited there (material_audit) with who, and logged; a material the retention
deleted is refused material_deleted and shown so in the state; another
teller, a teller the task was reassigned away from, a console not signed in, a role without
the tasks screen, another site's page, an unknown task and a bad or out-of-range number are
refused in JSON naming what was wrong, never a 500."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from datetime import timedelta
from typing import Any

import aiohttp
import pytest

from branchline.server.console.i18n import format_time
from branchline.server.console.session import ConsoleSession
from branchline.server.console.web import ConsoleServer
from branchline.server.dispatch.tasks.material_audit import audit_of
from tests.unit.console_support import COUNTER, PNG, Stack, stack, until

__all__ = ["stack"]

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(90)]

PDF = b"%PDF-1.7\n%%EOF\n"


def send_task(stack: Stack, request_id: str) -> str:
    """A loan task for BR-1 with an ID photo (sent as octet-stream) and a PDF."""
    task = stack.dispatch.send_task(
        COUNTER, "BR-2", request_id, "BR-1", "loan", "Loan application", {"amount": "5000"}
    )
    upload = stack.dispatch.upload_material
    upload(COUNTER, task.task_id, "id-front.png", "application/octet-stream", PNG)
    upload(COUNTER, task.task_id, "statement.pdf", "application/pdf", PDF)
    return task.task_id


async def started(stack: Stack, who: str) -> tuple[ConsoleServer, str]:
    server = ConsoleServer(ConsoleSession(stack.settings(who)))
    return server, await server.start()


async def held_and_opened(stack: Stack, teller: ConsoleSession, request_id: str) -> str:
    """A new task offered to ``teller`` (on duty), accepted and opened on its console."""
    await until(teller, lambda f: "tasks" in f)
    if not teller.me["on_duty"]:
        assert await teller.handle("tasks.duty", {"on": True}) is None
    task_id = send_task(stack, request_id)
    await until(teller, lambda f: [t for t in f["tasks"]["tasks"] if t["task_id"] == task_id])
    assert await teller.handle("tasks.accept", {"task_id": task_id}) is None
    assert await teller.handle("tasks.open", {"task_id": task_id}) is None
    return task_id


async def get(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as response:
        return response.status, dict(response.headers), await response.read()


def audited(stack: Stack, task_id: str) -> list[tuple[str, str, str]]:
    """The server's audit of the task's materials: who, what, which."""
    return [(a.actor, a.action, a.name) for a in audit_of(stack.engine, task_id=task_id)]


def refusal(body: bytes) -> tuple[str, str, str]:
    data: dict[str, Any] = json.loads(body)
    assert data["message"]
    return data["status"], data["reason"], data.get("field", "")


async def test_the_holder_gets_the_image_from_the_route_and_the_state_only_its_url(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    server, url = await started(stack, "teller:T-1")
    teller = server.session
    try:
        task_id = await held_and_opened(stack, teller, "route-1")
        shown = teller.state_frame()["tasks"]["detail"]["materials"]
        assert [(m["name"], m["image_url"]) for m in shown] == [
            ("id-front.png", f"/tasks/{task_id}/materials/0"),
            ("statement.pdf", ""),
        ]
        assert "data:" not in teller.encode(teller.state_frame())
        caplog.clear()
        with caplog.at_level(logging.INFO):
            status, headers, body = await get(url + shown[0]["image_url"].lstrip("/"))
            assert status == 200 and body == PNG
            assert headers["Content-Type"] == "image/png"  # sniffed: uploaded as octet-stream
            assert headers["Cache-Control"] == "no-store"
            assert headers["X-Content-Type-Options"] == "nosniff"
            assert headers["Cross-Origin-Resource-Policy"] == "same-origin"
            # The console's own page asking: served.
            again, _, _ = await get(
                url + f"tasks/{task_id}/materials/0", **{"Sec-Fetch-Site": "same-origin"}
            )
            assert again == 200
        viewed = [
            getattr(r, "branchline_fields", {})
            for r in caplog.records
            if r.getMessage() == "task_material_viewed"
        ]
        assert [(v["who"], v["task_id"], v["index"], v["name"]) for v in viewed] == [
            ("teller:T-1", task_id, 0, "id-front.png")
        ] * 2
        # The server audited both reads it handed out, by whom; the PDF, never shown, was
        # never read (opening the task reads no image).
        assert audited(stack, task_id) == [
            ("terminal MC-9", "uploaded", "id-front.png"),
            ("terminal MC-9", "uploaded", "statement.pdf"),
            ("teller T-1", "viewed", "id-front.png"),
            ("teller T-1", "viewed", "id-front.png"),
        ]
    finally:
        await server.stop()


async def test_bad_requests_are_refused_by_name(stack: Stack) -> None:
    server, url = await started(stack, "teller:T-1")
    try:
        task_id = await held_and_opened(stack, server.session, "route-2")
        base = url + f"tasks/{task_id}/materials/"
        cases = {
            url + "tasks/T-nope/materials/0": (404, ("NOT_FOUND", "not_found", "task_id")),
            base + "one": (400, ("INVALID_ARGUMENT", "invalid_argument", "index")),
            base + "-1": (400, ("INVALID_ARGUMENT", "invalid_argument", "index")),
            base + "%D9%A3": (400, ("INVALID_ARGUMENT", "invalid_argument", "index")),  # ٣
            base + "2": (404, ("NOT_FOUND", "not_found", "index")),
            base + "9" * 5000: (404, ("NOT_FOUND", "not_found", "index")),
            base + "1": (404, ("NOT_FOUND", "not_found", "index")),  # the PDF: no image
        }
        for address, (code, named) in cases.items():
            status, headers, body = await get(address)
            assert (status, refusal(body)) == (code, named), address[-40:]
            assert headers["Content-Type"].startswith("application/json")
        status, _, body = await get(base + "1")
        assert "statement.pdf" in json.loads(body)["message"]
        status, _, body = await get(base + "2")
        assert "materials 0 to 1" in json.loads(body)["message"]
        # Another site's page pointing an <img> (or a fetch) at the address.
        for header in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "http://evil.example"}):
            status, _, body = await get(base + "0", **header)
            assert (status, refusal(body)) == (403, ("PERMISSION_DENIED", "same_origin", ""))
        # Every one refused before the server was asked: none audited as a viewing.
        assert [a for a in audited(stack, task_id) if a[1] == "viewed"] == []
    finally:
        await server.stop()


async def test_only_the_teller_holding_the_task_or_its_lobby_manager_sees_it(
    stack: Stack,
) -> None:
    one, one_url = await started(stack, "teller:T-1")
    nine, nine_url = await started(stack, "teller:T-9")
    lobby, lobby_url = await started(stack, "lobby:L1")
    try:
        task_id = await held_and_opened(stack, one.session, "route-3")
        path = f"tasks/{task_id}/materials/0"
        assert (await get(one_url + path))[0] == 200
        # Another teller's console has no such task open (nor may it open it).
        status, _, body = await get(nine_url + path)
        assert (status, refusal(body)) == (404, ("NOT_FOUND", "not_found", "task_id"))
        refused = await nine.session.handle("tasks.open", {"task_id": task_id})
        assert refused is not None and refused["status"] in ("NOT_FOUND", "PERMISSION_DENIED")
        # The lobby manager of the branch opens it: served to them as the server allows.
        await until(lobby.session, lambda f: "tasks" in f)
        assert await lobby.session.handle("lobby.open", {"task_id": task_id}) is None
        assert (await get(lobby_url + path))[0] == 200
        # T-1 hands it to T-9: still open on T-1's console, its image no longer T-1's.
        await until(nine.session, lambda f: "tasks" in f)
        assert await nine.session.handle("tasks.duty", {"on": True}) is None
        move = {"task_id": task_id, "to_teller_id": "T-9", "reason": "loans desk"}
        assert await one.session.handle("tasks.reassign", move) is None
        status, _, body = await get(one_url + path)
        assert (status, refusal(body)) == (
            403,
            ("PERMISSION_DENIED", "task_holder_only", "task_id"),
        )
        assert "held by teller T-9" in json.loads(body)["message"]
        # T-9 accepts and opens it: now theirs to see.
        await until(
            nine.session, lambda f: [t for t in f["tasks"]["tasks"] if t["task_id"] == task_id]
        )
        assert await nine.session.handle("tasks.accept", {"task_id": task_id}) is None
        assert await nine.session.handle("tasks.open", {"task_id": task_id}) is None
        status, headers, body = await get(nine_url + path)
        assert (status, headers["Content-Type"], body) == (200, "image/png", PNG)
        # The lobby manager hands it back to T-1: T-9's console learns it from its stream.
        back = {"task_id": task_id, "to_teller_id": "T-1", "reason": "T-9 is needed elsewhere"}
        assert await lobby.session.handle("lobby.reassign", back) is None
        await until(nine.session, lambda f: f["tasks"]["detail"]["teller_id"] == "T-1")
        status, _, body = await get(nine_url + path)
        assert (status, refusal(body)[1]) == (403, "task_holder_only")
    finally:
        for server in (one, nine, lobby):
            await server.stop()


async def test_refused_before_sign_in_and_without_the_tasks_screen(stack: Stack) -> None:
    # A console whose server is not there: not signed in, so nobody's materials.
    nowhere = dataclasses.replace(stack.settings("teller:T-1"), target="127.0.0.1:9")
    lost = ConsoleServer(ConsoleSession(nowhere))
    lost_url = await lost.start()
    operator, operator_url = await started(stack, "operator:ops")
    try:
        status, _, body = await get(lost_url + "tasks/T-1/materials/0")
        assert (status, refusal(body)) == (403, ("PERMISSION_DENIED", "not_signed_in", ""))
        await until(operator.session, lambda f: "fleet" in f)
        status, _, body = await get(operator_url + "tasks/T-1/materials/0")
        assert (status, refusal(body)) == (403, ("PERMISSION_DENIED", "role_view", ""))
        # Neither the staff page nor the branch display shows data: images (their images
        # come from routes like this one: the display's photo from /display/photos/...).
        _, page, _ = await get(operator_url)
        _, display, _ = await get(operator_url + "display")
        for policy in (page["Content-Security-Policy"], display["Content-Security-Policy"]):
            assert "img-src 'self';" in policy and "data:" not in policy
    finally:
        await lost.stop()
        await operator.stop()


async def test_a_material_the_retention_deleted_is_refused_and_shown_so(stack: Stack) -> None:
    server, url = await started(stack, "teller:T-1")
    teller = server.session
    try:
        task_id = await held_and_opened(stack, teller, "route-5")
        path = url + f"tasks/{task_id}/materials/0"
        assert (await get(path))[0] == 200
        done = {"task_id": task_id, "outcome": "success"}
        assert await teller.handle("tasks.complete", done) is None
        # The task ended; the server keeps its materials no longer (a retention of 0 here).
        stack.dispatch.material_retention = timedelta(0)
        await asyncio.sleep(0.01)
        assert sorted(stack.dispatch.sweep_materials()) == [
            (task_id, "id-front.png"),
            (task_id, "statement.pdf"),
        ]
        await asyncio.sleep(1.1)  # the console learns of it a second later, at least
        # Still open on the console: the server refuses the read, and the page says so.
        status, _, body = await get(path)
        assert (status, refusal(body)) == (
            409,
            ("FAILED_PRECONDITION", "material_deleted", "index"),
        )
        assert "(id-front.png) was deleted" in json.loads(body)["message"]
        shown = await until(
            teller, lambda f: f["tasks"]["detail"]["materials"][0]["deleted_at"] or None
        )
        # When, as the server said (not when the console found out).
        deleted = [a for a in audit_of(stack.engine, task_id=task_id) if a.action == "deleted"]
        assert shown == format_time(deleted[0].at)
        first = teller.state_frame()["tasks"]["detail"]["materials"][0]
        assert first["image_url"] == ""
        # Opened again: deleted as the server lists it; refused without asking the server.
        assert await teller.handle("tasks.open", {"task_id": task_id}) is None
        again = teller.state_frame()["tasks"]["detail"]["materials"]
        assert [(m["name"], bool(m["deleted_at"]), m["image_url"]) for m in again] == [
            ("id-front.png", True, ""),
            ("statement.pdf", True, ""),
        ]
        status, _, body = await get(path)
        assert (status, refusal(body)) == (
            409,
            ("FAILED_PRECONDITION", "material_deleted", "index"),
        )
        trail = audited(stack, task_id)
        assert [a for a in trail if a[1] != "uploaded"] == [
            ("teller T-1", "viewed", "id-front.png"),
            ("retention", "deleted", "id-front.png"),
            ("retention", "deleted", "statement.pdf"),
        ]
    finally:
        await server.stop()
