"""Statement on screen and printed; rates board and its stale marker; video-teller queue."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from branchline.agent.kiosk.session import KioskSession
from branchline.agent.kiosk.settings import KioskSettings
from branchline.drivers.base import Completion, DeviceError, DeviceStatus
from branchline.v1 import calls_pb2
from branchline.v1 import customer_info_pb2 as info_pb
from tests.unit.kiosk_support import FakeAgent, Page, card_and_pin, rate_table, until, verified

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]


def statement() -> info_pb.Statement:
    out = info_pb.Statement(customer_id="C-1", opening_balance="100.00")
    out.account.CopyFrom(
        info_pb.StatementAccount(
            account_id="ACC-1", kind="cash", currency="CNY", balance="600.00", available="600.00"
        )
    )
    out.balances.add(
        account_id="ACC-G", kind="metal", currency="XAU", balance="12.5", available="12.5"
    )
    line = out.lines.add(entry_id=41, description="Tube deposit", amount="500.00")
    line.balance_after = "600.00"
    line.posted_at.FromDatetime(datetime(2026, 12, 6, 9, 5, tzinfo=UTC))
    out.generated_at.FromDatetime(datetime(2026, 12, 6, 10, 0, tzinfo=UTC))
    return out


async def start(
    tmp_path: Path, service: str, lang: str = "en"
) -> tuple[FakeAgent, KioskSession, Page]:
    agent = FakeAgent(tmp_path, KioskSettings(port=0, language=lang))
    agent.store = type("Store", (), {"ejournal": type("E", (), {"append": lambda *a: None})()})()  # type: ignore[attr-defined]
    agent.uplink.statement = statement()
    await agent.rates.accept(rate_table())
    session = KioskSession(agent, agent.config.kiosk)  # type: ignore[arg-type]
    session.show_attract()
    page = Page(session)
    card_and_pin(agent).set()
    agent.uplink.pin_replies.append(verified())
    await session.handle("start", {"service": service})
    await until(lambda: page.last["screen"] not in ("attract", "card", "pin"))
    return agent, session, page


async def test_statement_on_screen_then_printed_with_its_qr(tmp_path: Path) -> None:
    agent, session, page = await start(tmp_path, "statement")
    await until(lambda: page.last["data"].get("account") is not None)
    data = page.last["data"]
    assert data["account"]["account_id"] == "ACC-1"
    assert data["lines"] == [
        {
            "date": "6 Dec 2026 09:05 UTC",
            "description": "Tube deposit",
            "amount": "CNY 500.00",
            "balance": "CNY 600.00",
        }
    ]
    assert (data["opening"], data["balance"], data["can_print"]) == (
        "CNY 100.00",
        "CNY 600.00",
        True,
    )
    assert data["balances"] == [
        {"account_id": "ACC-G", "balance": "12.500 g gold", "available": "12.500 g gold"}
    ]
    request = agent.uplink.requests[-1]["statement_request"]
    assert request.account_id == "ACC-1" and request.session_token.startswith("server-session")
    jobs: list[bytes] = []

    async def print_job(params: dict[str, Any]) -> Any:
        jobs.append(bytes.fromhex(params["data_hex"]))
        return {"bytes": len(jobs[-1])}

    agent.owners["printer"].scripts["print_job"] = print_job
    await session.handle("print", {})
    await until(lambda: bool(page.last["data"]["printed"]))
    assert page.last["data"]["printed"] == "BLST:K-1:ACC-1:41"
    assert b"STATEMENT" in jobs[0] and b"BLST:K-1:ACC-1:41" in jobs[0]


async def test_printer_out_of_paper_shows_the_statement_without_print(tmp_path: Path) -> None:
    agent, session, page = await start(tmp_path, "statement")
    agent.set_status("printer", DeviceStatus.USER_ERROR)
    session.tick()
    await until(lambda: page.last["data"].get("account") is not None)
    session.tick()
    assert page.last["data"]["can_print"] is False
    assert page.last["data"]["notice"] == "notice.printer_unavailable"
    await session.handle("print", {})
    assert page.refusals[-1]["action"] == "print"


async def test_a_print_that_fails_says_so(tmp_path: Path) -> None:
    agent, session, page = await start(tmp_path, "statement")
    await until(lambda: page.last["data"].get("account") is not None)

    async def jammed(params: dict[str, Any]) -> Any:
        raise DeviceError(Completion.HARDWARE_ERROR, "paper_jam", "paper jam")

    agent.owners["printer"].scripts["print_job"] = jammed
    await session.handle("print", {})
    await until(lambda: page.last["data"]["print_failed"])
    assert page.last["data"]["printed"] == ""


async def test_rates_board_marks_stale_rates(tmp_path: Path) -> None:
    agent = FakeAgent(tmp_path, KioskSettings(port=0, language="en"))
    await agent.rates.accept(rate_table(version=7))
    session = KioskSession(agent, agent.config.kiosk)  # type: ignore[arg-type]
    session.show_attract()
    page = Page(session)
    await session.handle("start", {"service": "rates"})
    board = page.last
    assert board["screen"] == "rates" and board["data"]["stale"] is False
    assert board["data"]["rates"][0] == {
        "currency": "USD",
        "name": "USD",
        "bid": "7.10",
        "ask": "7.20",
    }
    assert board["data"]["as_of"] == "6 Dec 2026 09:30 UTC"
    agent.uplink.connected = False
    session.tick()
    assert page.last["data"]["stale"] is True
    await session.handle("back", {})
    assert page.last["screen"] == "attract"


class Calls:
    def __init__(self) -> None:
        self.call: calls_pb2.Call | None = None
        self.left: list[str] = []

    async def request_teller(self, business_type: str, mode: int) -> calls_pb2.Call:
        self.call = calls_pb2.Call(
            call_id="call-1",
            business_type=business_type,
            mode=mode,  # type: ignore[arg-type]
            state=calls_pb2.CALL_STATE_QUEUED,
            position=3,
            estimated_wait_seconds=240,
        )
        return self.call

    async def leave(self, call_id: str, reason: str = "") -> calls_pb2.Call:
        self.left.append(call_id)
        assert self.call is not None
        self.call.state = calls_pb2.CALL_STATE_LEFT
        self.call.position = 0
        return self.call


async def test_video_request_follows_the_queue_and_leaves(tmp_path: Path) -> None:
    agent = FakeAgent(tmp_path, KioskSettings(port=0, language="zh-CN"))
    agent.calls = Calls()  # type: ignore[assignment]
    session = KioskSession(agent, agent.config.kiosk)  # type: ignore[arg-type]
    session.show_attract()
    page = Page(session)
    await session.handle("start", {"service": "video"})
    assert page.last["screen"] == "video" and page.last["data"]["state"] == "choose"
    await session.handle("request", {"business_type": "astrology", "mode": "video_teller"})
    assert page.refusals[-1]["field"] == "business_type"
    await session.handle("request", {"business_type": "loan", "mode": "video_teller"})
    await until(lambda: page.last["data"]["state"] == "queued")
    assert page.last["data"]["position"] == 3
    assert page.last["data"]["estimated_wait"] == "约 4 分钟"
    # The server pushes a new position to the call session; the screen follows.
    agent.calls.call.position = 1  # type: ignore[attr-defined]
    agent.calls.call.estimated_wait_seconds = 30  # type: ignore[attr-defined]
    session.tick()
    assert page.last["data"]["position"] == 1
    assert page.last["data"]["estimated_wait"] == "不到 1 分钟"
    assert not session.timed()  # no time limit while queued
    await session.handle("leave", {})
    await until(lambda: page.last["data"]["state"] == "ended")
    assert agent.calls.left == ["call-1"]  # type: ignore[attr-defined]
