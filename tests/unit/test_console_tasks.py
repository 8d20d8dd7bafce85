"""The console's teller and lobby-manager screens without a browser, against a real server:
a teller goes on duty, gets a cross-branch offer with its countdown, accepts, opens the
materials (an image by the console's URL, ID number partly masked) and returns a result the origin sees; a
lobby manager sees the roster and designates a teller when none is idle; a teller cannot open
another teller's task (the server refuses it)."""

from __future__ import annotations

import logging

import pytest

from branchline.server.console.session import ConsoleSession
from tests.unit.console_support import COUNTER, PNG, Stack, stack, until

__all__ = ["stack"]

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(90)]


def send_task(stack: Stack, request_id: str) -> str:
    task = stack.dispatch.send_task(
        COUNTER,
        "BR-2",
        request_id,
        "BR-1",
        "loan",
        "Loan application",
        {"amount": "5000", "id_number": "11010519491231002X"},
    )
    stack.dispatch.upload_material(COUNTER, task.task_id, "id-front.png", "image/png", PNG)
    return task.task_id


def tasks(frame: dict[str, object]) -> dict[str, dict[str, object]]:
    shown = frame.get("tasks") or {}
    return {t["task_id"]: t for t in shown["tasks"]}  # type: ignore[index]


async def test_teller_accepts_views_materials_and_returns_a_result(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    teller = ConsoleSession(stack.settings("teller:T-1"))
    await teller.start()
    try:
        await until(teller, lambda f: f["views"] == ["tasks", "calls", "assistant", "recordings"])
        assert await teller.handle("tasks.duty", {"on": True}) is None
        assert teller.state_frame()["me"]["on_duty"] is True
        task_id = send_task(stack, "offer-1")
        offered = await until(teller, lambda f: tasks(f).get(task_id))
        assert offered["state"] == "offered" and 0 < offered["expires_in"] <= 60  # type: ignore[operator]
        assert offered["fields"]["id_number"] == "1101************2X"  # type: ignore[index]
        # The business in words of the console's language, its id beside them for the page.
        assert (offered["business_type"], offered["business_name"]) == ("loan", "Loans")
        bad = await teller.handle("tasks.wait", {"task_id": task_id, "minutes": "0"})
        assert bad is not None and bad["field"] == "minutes"
        wait = {"task_id": task_id, "minutes": "5", "reason": "finishing a customer"}
        assert await teller.handle("tasks.wait", wait) is None
        assert tasks(teller.state_frame())[task_id]["state"] == "waiting"
        held = stack.dispatch.read_task(task_id)
        assert held is not None and held.wait_estimate_seconds == 300
        assert await teller.handle("tasks.accept", {"task_id": task_id}) is None
        assert tasks(teller.state_frame())[task_id]["state"] == "accepted"
        assert stack.dispatch.read_task(task_id).state == "accepted"  # type: ignore[union-attr]

        with caplog.at_level(logging.INFO):
            assert await teller.handle("tasks.open", {"task_id": task_id}) is None
        detail = teller.state_frame()["tasks"]["detail"]
        assert detail["task_id"] == task_id
        # The image by the console's route (test_console_materials.py), never its bytes.
        assert detail["materials"][0]["image_url"] == f"/tasks/{task_id}/materials/0"
        assert "data:" not in teller.encode(teller.state_frame())
        # The fields in words, amounts as money. Opening reads no image: the page loads
        # each from the console's route, which reads it from the server (audited there:
        # test_console_materials.py).
        facts = {f["key"]: (f["label"], f["value"]) for f in detail["facts"]}
        assert facts == {
            "amount": ("Amount", "CNY 5,000.00"),
            "id_number": ("ID number", "1101************2X"),
        }
        logged = {r.getMessage(): getattr(r, "branchline_fields", {}) for r in caplog.records}
        assert "material_read" not in logged
        assert "11010519491231002X" not in str(teller.state_frame())

        missing = await teller.handle("tasks.complete", {"task_id": task_id, "outcome": "failure"})
        assert missing is not None and missing["field"] == "reason"
        done = {"task_id": task_id, "outcome": "success", "reason": "approved"}
        assert await teller.handle("tasks.complete", done) is None
        assert task_id not in tasks(teller.state_frame())
        finished = stack.dispatch.read_task(task_id)
        assert finished is not None and finished.state == "done"
        # Another teller's task is not shown, and the server refuses to open it.
        assert await teller.handle("tasks.duty", {"on": False}) is None
        other = send_task(stack, "offer-2")  # queued for the branch, not T-1's
        refused = await teller.handle("tasks.open", {"task_id": other})
        assert refused is not None and refused["status"] in ("NOT_FOUND", "PERMISSION_DENIED")
        assert other not in tasks(teller.state_frame())
    finally:
        await teller.stop()


async def test_lobby_manager_designates_when_no_teller_is_idle(stack: Stack) -> None:
    lobby = ConsoleSession(stack.settings("lobby:L1"))
    teller = ConsoleSession(stack.settings("teller:T-1"))
    await lobby.start()
    await teller.start()
    try:
        await until(lobby, lambda f: f["views"] == ["lobby", "assistant", "recordings"])
        assert await lobby.handle("lobby.duty", {"on": True}) is None
        roster = await until(lobby, lambda f: f["tasks"]["roster"])
        assert {m["id"] for m in roster} >= {"T-1", "BO-1"}
        assert await lobby.handle("lobby.teller_duty", {"teller_id": "T-1", "on": True}) is None
        on = await until(
            lobby, lambda f: [m for m in f["tasks"]["roster"] if m["id"] == "T-1" and m["on_duty"]]
        )
        assert on[0]["presence"] == "idle"
        # T-1 takes the first task and is busy: the next one waits at the lobby.
        first = send_task(stack, "lobby-1")
        await until(teller, lambda f: tasks(f).get(first))
        assert await teller.handle("tasks.accept", {"task_id": first}) is None
        task_id = send_task(stack, "lobby-2")
        waiting = await until(lobby, lambda f: tasks(f).get(task_id))
        assert waiting["state"] == "at_lobby"
        busy = await until(lobby, lambda f: [m for m in f["tasks"]["roster"] if m["id"] == "T-1"])
        assert busy[0]["presence"] == "busy"
        nobody = await lobby.handle("lobby.designate", {"task_id": task_id})
        assert nobody is not None and nobody["field"] == "teller_id"
        designate = {"task_id": task_id, "teller_id": "T-1"}
        assert await lobby.handle("lobby.designate", designate) is None
        shown = await until(lobby, lambda f: tasks(f)[task_id]["state"] == "offered" and f)
        assert tasks(shown)[task_id]["teller_id"] == "T-1"
        offered = await until(teller, lambda f: tasks(f).get(task_id))
        assert offered["state"] == "offered"
        refused = await lobby.handle("tasks.accept", {"task_id": task_id})
        assert refused is not None and refused["reason"] == "role_view"
        # Reassign to a named teller of the branch (T-9 does loans too).
        assert await lobby.handle("lobby.teller_duty", {"teller_id": "T-9", "on": True}) is None
        unnamed = await lobby.handle("lobby.reassign", {"task_id": task_id})
        assert unnamed is not None and unnamed["field"] == "to_teller_id"
        move = {"task_id": task_id, "to_teller_id": "T-9", "reason": "T-1 is busy"}
        assert await lobby.handle("lobby.reassign", move) is None
        moved = await until(lobby, lambda f: tasks(f)[task_id]["teller_id"] == "T-9" and f)
        assert tasks(moved)[task_id]["state"] == "offered"
        await until(teller, lambda f: task_id not in tasks(f))
    finally:
        await lobby.stop()
        await teller.stop()
