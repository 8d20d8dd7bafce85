"""The console's video-call screen without a browser, against a real server: a call from a
terminal rings at the teller on duty, the teller answers on the console, sends a
remote-peripheral command and sees its result (card number masked), asks for a signature and
gets its image from the console's loopback page server (hashing to the recorded SHA-256),
then ends the call; commands without an active call are refused naming the field."""

from __future__ import annotations

import hashlib

import aiohttp
import pytest

from branchline.server.console.session import ConsoleSession
from branchline.server.console.web import ConsoleServer
from branchline.server.dispatch.calls import Outcome
from branchline.server.dispatch.model import Actor
from branchline.sim.devices.signature import draw_signature
from tests.unit.console_support import Stack, stack, until

__all__ = ["stack"]

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(90)]

TERMINAL = Actor("terminal", "K-1")


# long: one call from ringing to its end, each step the console shows in turn
async def test_call_answered_command_result_and_end(stack: Stack) -> None:
    server = ConsoleServer(ConsoleSession(stack.settings("teller:T-1")))
    url = await server.start()
    teller = server.session
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
        assert (ringing["business_type"], ringing["business_name"]) == ("loan", "Loans")
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

        assert await teller.handle("calls.command", {"kind": "signature", "title": "Sign"}) is None
        ask = [c for c in teller.state_frame()["calls"]["commands"] if c["kind"] == "signature"]
        png = draw_signature("Li Lei")
        stack.calls.record_outcome(
            TERMINAL,
            Outcome(ask[0]["command_id"], call.call_id, "success", signature_png=png),
        )
        signed = await until(
            teller,
            lambda f: [c for c in f["calls"]["commands"] if c["signature_url"]],
        )
        assert signed[0]["signature_url"] == f"/signature/{ask[0]['command_id']}"
        async with aiohttp.ClientSession() as http:
            async with http.get(url + signed[0]["signature_url"].lstrip("/")) as response:
                assert response.status == 200 and response.content_type == "image/png"
                shown = await response.read()
            async with http.get(url + "signature/99999") as response:
                assert response.status == 404
        assert shown == png
        assert hashlib.sha256(shown).hexdigest() == signed[0]["signature_sha256"]

        assert await teller.handle("calls.end", {"reason": "done"}) is None
        await until(teller, lambda f: f["calls"]["current"] is None)
    finally:
        await server.stop()
