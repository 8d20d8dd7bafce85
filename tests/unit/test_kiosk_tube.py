"""Deposit and withdrawal on the kiosk: forms, the engine's stages on screen, the customer's
steps handed to the engine (faked at ``tube.customer``'s plain functions), the rate shown,
and a transaction recovered after a restart taking the screen by itself."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from branchline.agent.kiosk.session import KioskSession
from branchline.agent.kiosk.settings import KioskSettings
from branchline.agent.tube import customer
from branchline.agent.tube import machines as m
from branchline.agent.tube.engine import Intent, Live, TubeRefused
from branchline.v1 import tube_pb2 as pb
from tests.unit.kiosk_support import FakeAgent, Page, card_and_pin, rate_table, until, verified

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]


class Tube:
    """The engine's customer functions, as a script: records what the kiosk asked for."""

    def __init__(self, agent: FakeAgent, monkeypatch: pytest.MonkeyPatch) -> None:
        self.agent = agent
        self.started: list[tuple[str, pb.StartTubeRequest]] = []
        self.steps: list[tuple[str, Any]] = []
        self.refuse: TubeRefused | None = None
        self.receipts: list[bool] = []
        agent.tube.agent = agent  # type: ignore[attr-defined]
        agent.tube.intend = self.intend  # type: ignore[attr-defined]
        for name in ("start", "send_carrier", "decide", "confirm_receipt", "cancel"):
            monkeypatch.setattr(customer, name, getattr(self, name))

    def move(self, live: Live, stage: str, **server: Any) -> None:
        live.stage = stage
        if server:
            live.server = pb.TubeTransaction(txn_id=live.txn_id, **server)
        live.touch()

    async def start(
        self, engine: Any, request: pb.StartTubeRequest, kind: str, receipt: bool = True
    ) -> Live:
        if self.refuse is not None:
            raise self.refuse
        self.started.append((kind, request))
        self.receipts.append(receipt)
        asset = request.asset
        live = Live(
            key=f"txn-{len(self.started)}",
            kind=kind,
            data={
                "customer_id": "C-1",
                "account_id": request.account_id,
                "account_currency": "CNY",
                "asset": {"kind": "", "currency": asset.currency, "amount": asset.amount},
                "rate_version": 3 if asset.currency != "CNY" else 0,
            },
            stage="awaiting_carrier" if kind == m.DEPOSIT else "authorising",
            stage_data={},
            stage_at=time.time(),
            step=1,
        )
        self.agent.tube.live[live.txn_id] = live
        return live

    async def send_carrier(self, engine: Any, session_id: str, txn_id: str) -> Live:
        self.steps.append(("send", txn_id))
        live: Live = self.agent.tube.live[txn_id]
        self.move(live, "sent")
        return live

    async def decide(self, engine: Any, session_id: str, txn_id: str, decision: int) -> Live:
        self.steps.append(("decide", decision))
        live: Live = self.agent.tube.live[txn_id]
        self.move(live, "confirming" if decision == pb.DECISION_CONFIRM else "disputing")
        return live

    async def confirm_receipt(self, engine: Any, session_id: str, txn_id: str) -> Live:
        self.steps.append(("confirm_receipt", txn_id))
        live: Live = self.agent.tube.live[txn_id]
        self.move(live, "capturing")
        return live

    async def cancel(self, engine: Any, session_id: str, txn_id: str) -> Live:
        self.steps.append(("cancel", txn_id))
        live: Live = self.agent.tube.live[txn_id]
        self.move(live, "canceled")
        return live

    async def intend(self, live: Live, intent: Intent, accepted: frozenset[str]) -> None:
        self.steps.append(("intend", (intent.name, intent.customer_id, sorted(accepted))))
        self.move(live, "capturing")


async def signed_in(tmp_path: Path, service: str) -> tuple[FakeAgent, KioskSession, Page]:
    agent = FakeAgent(tmp_path, KioskSettings(port=0, language="en"))
    session = KioskSession(agent, agent.config.kiosk)  # type: ignore[arg-type]
    session.show_attract()
    page = Page(session)
    card_and_pin(agent).set()
    agent.uplink.pin_replies.append(verified())
    await session.handle("start", {"service": service})
    await until(lambda: page.last["screen"] not in ("attract", "card", "pin"))
    return agent, session, page


async def test_cash_deposit_confirmed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    agent, session, page = await signed_in(tmp_path, "deposit")
    tube = Tube(agent, monkeypatch)
    form = page.last
    assert form["screen"] == "deposit_form"
    assert form["data"]["kinds"] == ["cash", "metal"]
    await session.handle(
        "submit", {"kind": "cash", "account_id": "ACC-1", "currency": "cny", "amount": "500"}
    )
    await until(lambda: page.last["screen"] == "tube")
    kind, request = tube.started[0]
    assert kind == m.DEPOSIT and request.account_id == "ACC-1"
    assert request.session_id == session.customer.session_id  # type: ignore[union-attr]
    assert (request.asset.kind, request.asset.currency, request.asset.amount) == (
        pb.ASSET_KIND_CASH,
        "CNY",
        "500",
    )
    data = page.last["data"]
    assert (data["kind"], data["step"], data["declared"]) == (
        "deposit",
        "load_carrier",
        "CNY 500.00",
    )
    assert data["can_cancel"] and not data["finished"]
    await session.handle("send", {})
    await until(lambda: page.last["data"]["stage"] == "sent")
    assert page.last["data"]["step"] == "wait"
    # Nothing to confirm while the back office counts.
    await session.handle("confirm", {})
    assert page.refusals[-1]["action"] == "confirm"
    live = agent.tube.live["txn-1"]
    tube.move(
        live,
        "counted",
        state=pb.TUBE_STATE_COUNTED,
        counted=pb.TubeAsset(kind=pb.ASSET_KIND_CASH, currency="CNY", amount="500.00"),
    )
    await until(lambda: page.last["data"]["step"] == "decide")
    assert page.last["data"]["counted"] == "CNY 500.00"
    await session.handle("confirm", {})
    await until(lambda: page.last["data"]["stage"] == "confirming")
    assert tube.steps == [("send", "txn-1"), ("decide", pb.DECISION_CONFIRM)]
    tube.move(live, "completed")
    await until(lambda: page.last["data"]["finished"])
    assert page.last["data"]["reference"].startswith("BLTX:K-1:txn-1")
    assert tube.receipts == [True] and page.last["data"]["receipt"] is True
    await session.handle("done", {})
    assert page.last["screen"] == "menu"


async def test_deposit_form_refusals_name_the_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent, session, page = await signed_in(tmp_path, "deposit")
    tube = Tube(agent, monkeypatch)
    await session.handle("submit", {"kind": "gems", "account_id": "ACC-1", "amount": "1"})
    assert page.refusals[-1]["field"] == "kind"
    await session.handle("submit", {"kind": "cash", "account_id": "ACC-9", "amount": "1"})
    assert page.refusals[-1]["field"] == "account_id"
    await session.handle("submit", {"kind": "cash", "account_id": "ACC-1", "amount": ""})
    assert page.refusals[-1]["field"] == "amount"
    await session.handle(
        "submit", {"kind": "cash", "account_id": "ACC-1", "amount": "5", "receipt": "maybe"}
    )
    assert page.refusals[-1]["field"] == "receipt"
    assert tube.started == []
    tube.refuse = TubeRefused("invalid", "invalid_amount", "asset.amount: 'x' is not a decimal")
    await session.handle("submit", {"kind": "cash", "account_id": "ACC-1", "amount": "x"})
    await until(lambda: page.refusals[-1]["action"] == "deposit")
    refused = page.refusals[-1]
    assert refused["field"] == "amount"
    assert refused["message"] == "Enter an amount such as 100."
    assert page.last["screen"] == "deposit_form" and page.last["data"]["busy"] is False


async def test_foreign_currency_withdrawal_shows_the_rate_it_will_post(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent, session, page = await signed_in(tmp_path, "withdrawal")
    tube = Tube(agent, monkeypatch)
    await agent.rates.accept(rate_table(version=3))
    session.tick()
    form = page.last["data"]
    assert [c["currency"] for c in form["currencies"]] == ["USD", "EUR"]
    await session.handle("quote", {"account_id": "ACC-1", "currency": "usd", "amount": "100"})
    quote = page.last
    assert quote["screen"] == "withdrawal_quote"
    assert quote["data"]["rate"] == "7.2" and quote["data"]["rate_version"] == 3
    assert quote["data"]["amount"] == "USD 100.00"
    assert quote["data"]["equivalent"] == "CNY 720.00"
    # The bank changes its rates before the customer confirms: the new rate is shown first.
    newer = rate_table(version=4)
    newer.rates[0].ask = "7.25"
    await agent.rates.accept(newer)
    await session.handle("submit", {})
    assert page.refusals[-1]["field"] == "rate"
    assert page.last["data"]["rate"] == "7.25" and page.last["data"]["rate_version"] == 4
    await session.handle("submit", {"receipt": "no"})
    await until(lambda: page.last["screen"] == "tube")
    kind, request = tube.started[0]
    assert kind == m.WITHDRAWAL and tube.receipts == [False]
    assert (request.asset.currency, request.asset.amount) == ("USD", "100")
    live = agent.tube.live["txn-1"]
    tube.move(
        live,
        "awaiting_delivery",
        state=pb.TUBE_STATE_OPEN,
        quote=pb.TubeQuote(
            rate_version=4, rate="7.25", account_currency="CNY", account_amount="725.00"
        ),
    )
    await until(lambda: page.last["data"]["rate"] == "7.25")
    assert page.last["data"]["account_amount"] == "CNY 725.00"
    assert page.last["data"]["can_cancel"]
    tube.move(live, "awaiting_delivery", state=pb.TUBE_STATE_DISPATCHED)
    await until(lambda: not page.last["data"]["can_cancel"])
    await session.handle("cancel", {})
    assert page.refusals[-1]["action"] == "cancel"
    tube.move(live, "taken")
    await until(lambda: page.last["data"]["step"] == "confirm_receipt")
    await session.handle("confirm_receipt", {})
    await until(lambda: page.last["data"]["stage"] == "capturing")
    assert tube.steps == [("confirm_receipt", "txn-1")]


async def test_stale_rates_refuse_a_foreign_currency_quote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent, session, page = await signed_in(tmp_path, "withdrawal")
    await agent.rates.accept(rate_table())
    agent.uplink.connected = False
    await session.handle("quote", {"account_id": "ACC-1", "currency": "USD", "amount": "100"})
    assert page.refusals[-1]["field"] == "currency"
    await session.handle("quote", {"account_id": "ACC-1", "currency": "", "amount": "100"})
    assert page.last["screen"] == "withdrawal_quote"
    assert page.last["data"]["rate"] == "" and page.last["data"]["equivalent"] == "CNY 100.00"


async def test_a_recovered_transaction_takes_the_screen_by_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = FakeAgent(tmp_path, KioskSettings(port=0))
    session = KioskSession(agent, agent.config.kiosk)  # type: ignore[arg-type]
    session.show_attract()
    page = Page(session)
    tube = Tube(agent, monkeypatch)
    live = Live(
        key="txn-r",
        kind=m.WITHDRAWAL,
        data={
            "customer_id": "C-1",
            "account_id": "ACC-1",
            "asset": {"currency": "CNY", "amount": "300"},
        },
        stage="taken",
        stage_data={},
        stage_at=time.time(),
        step=5,
        recovered=True,
    )
    agent.tube.live[live.txn_id] = live
    from branchline.agent.kiosk.flows import tube as tube_flow

    tube_flow.adopt_recovered(session)
    await until(lambda: page.last["screen"] == "tube")
    data = page.last["data"]
    assert data["recovered"] and data["step"] == "confirm_receipt"
    assert data["declared"] == "300.00 元"
    await session.handle("confirm_receipt", {})
    await until(lambda: page.last["data"]["stage"] == "capturing")
    assert tube.steps == [("intend", ("confirm_receipt", "C-1", ["taken"]))]
    tube.move(live, "completed")
    await until(lambda: page.last["data"]["finished"])
    # Adopted once only: back on attract it does not come back.
    await session.handle("done", {})
    await until(lambda: page.last["screen"] == "session_ended")
    tube_flow.adopt_recovered(session)
    assert page.last["screen"] == "session_ended"


async def test_after_a_restart_the_page_never_shows_attract_before_the_recovered_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio
    from types import SimpleNamespace

    from branchline.agent.kiosk import session as session_module

    agent = FakeAgent(tmp_path, KioskSettings(port=0))
    unfinished = [SimpleNamespace(kind=m.WITHDRAWAL, problem="")]
    agent.store = SimpleNamespace(txjournal=SimpleNamespace(unfinished=lambda: unfinished))  # type: ignore[attr-defined]
    monkeypatch.setattr(session_module, "TICK", 0.01)
    session = KioskSession(agent, agent.config.kiosk)  # type: ignore[arg-type]
    page = Page(session)
    Tube(agent, monkeypatch)
    runner = asyncio.ensure_future(session.run_forever())
    await until(lambda: bool(page.screens) and page.last["screen"] == "resuming")
    await asyncio.sleep(0.05)
    assert page.last["screen"] == "resuming"
    live = Live(
        key="txn-r",
        kind=m.WITHDRAWAL,
        data={"customer_id": "C-1", "asset": {"currency": "CNY", "amount": "1"}},
        stage="awaiting_delivery",
        stage_data={},
        stage_at=time.time(),
        step=2,
        recovered=True,
    )
    agent.tube.live[live.txn_id] = live  # the engine's recovery
    await until(lambda: page.last["screen"] == "tube")
    assert [s["screen"] for s in page.screens if s["screen"] != "resuming"][0] == "tube"
    runner.cancel()
    await session.stop()
