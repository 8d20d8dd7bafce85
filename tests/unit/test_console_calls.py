"""The console's video-call screen without a browser, against a real server: a call from a
terminal rings at the teller on duty, the teller answers on the console, sends a
remote-peripheral command and sees its result (card number masked), then ends the call;
commands without an active call are refused naming the field."""

from __future__ import annotations

import pytest

from branchline.server.console.session import ConsoleSession
from branchline.server.dispatch.calls import Outcome
from branchline.server.dispatch.model import Actor
from tests.unit.console_support import Stack, stack, until

__all__ = ["stack"]

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(90)]

TERMINAL = Actor("terminal", "K-1")


async def test_call_answered_command_result_and_end(stack: Stack) -> None:
    teller = ConsoleSession(stack.settings("teller:T-1"))
    await teller.start()
    try:
        await until(teller, lambda f: "calls" in f["views"] and "calls" in f)
        early = await teller.handle("calls.command", {"kind": "read_card"})
        assert early is not None and early["field"] == "call_id"
        assert await teller.handle("tasks.duty", {"on": True}) is None
        call = stack.calls.request_call(TERMINAL, "BR-1", "call-1", "loan", "video_teller")
        ringing = await until(
            teller, lambda f: (c := f["calls"]["current"]) and c["state"] == "ringing" and c
        )
        assert ringing["call_id"] == call.call_id and ringing["terminal_id"] == "K-1"
        assert await teller.handle("calls.answer", {"call_id": call.call_id}) is None
        assert teller.state_frame()["calls"]["current"]["state"] == "active"

        bad = await teller.handle("calls.command", {"kind": "teleport"})
        assert bad is not None and bad["field"] == "kind"
        assert await teller.handle("calls.command", {"kind": "read_card"}) is None
        sent = teller.state_frame()["calls"]["commands"]
        assert [c["kind"] for c in sent] == ["read_card"] and sent[0]["completion"] == ""
        stack.calls.record_outcome(
            TERMINAL,
            Outcome(
                command_id=sent[0]["command_id"],
                call_id=call.call_id,
                completion="success",
                fields={"pan": "4761731234560010", "expiry": "2812"},
            ),
        )
        done = await until(
            teller,
            lambda f: [c for c in f["calls"]["commands"] if c["completion"] == "success"],
        )
        assert done[0]["fields"]["pan"] == "476173******0010"
        assert "4761731234560010" not in str(teller.state_frame())

        assert await teller.handle("calls.end", {"reason": "done"}) is None
        await until(teller, lambda f: f["calls"]["current"] is None)
    finally:
        await teller.stop()
