"""The console's back office without a browser, against a real server over mTLS: a carrier
arrives live with its terminal and masked card; receive, count by denomination (a slip is
refused naming the field), the customer confirms and it posts; a dispute comes back and is
sent back; an incident is resolved; the history finds the deposit by receipt reference.
Roles: a teller without the back_office skill and another branch's back office see none of
it, and the server refuses them too."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from branchline.server.console.session import ConsoleSession
from branchline.v1 import tube_pb2 as pb
from tests.unit.console_support import Stack, carrier, restartable_stack, stack, until
from tests.unit.tube_support import (
    DEPOSIT,
    PAN_MASKED,
    SESSIONS,
    WITHDRAWAL,
    Clock,
    cash,
    metal,
    tube_open,
)

__all__ = ["stack"]

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(90)]


@pytest_asyncio.fixture
async def clerk(stack: Stack) -> AsyncIterator[ConsoleSession]:
    session = ConsoleSession(stack.settings("teller:BO-1"))
    await session.start()
    yield session
    await session.stop()


# long: one end-to-end scenario, step by step, over one stack of processes
async def test_deposit_from_arrival_to_posting_and_history(
    stack: Stack, clerk: ConsoleSession
) -> None:
    frame = await until(
        clerk,
        lambda f: f["views"] == ["backoffice", "tasks", "calls", "cheques", "recordings"] and f,
    )
    assert frame["me"]["branch"] == "BR-1" and frame["me"]["name"] == "Back office one"
    await until(clerk, lambda f: f["server"] == "online")
    stack.terminal("CON-1")
    row = await until(clerk, lambda f: carrier(f, "CON-1"))
    assert row["state"] == "in_transit" and row["terminal_id"] == "K-1"
    assert row["pan_masked"] == PAN_MASKED and row["customer_id"] == "c1"
    assert row["declared"] == "CNY 500.00" and row["actions"] == ["receive", "count"]
    assert row["denominations"][:3] == ["100", "50", "20"]
    assert row["reference"] == "BLTX:K-1:CON-1"

    assert await clerk.handle("backoffice.receive", {"txn_id": "CON-1"}) is None
    assert carrier(clerk.state_frame(), "CON-1")["state"] == "received"  # type: ignore[index]

    slip = await clerk.handle(
        "backoffice.count",
        {"txn_id": "CON-1", "kind": "cash", "amount": "500", "denominations": {"100": "4"}},
    )
    assert slip is not None
    assert (slip["field"], slip["reason"]) == ("denominations", "count_mismatch")
    assert "400 CNY" in slip["message"]
    bad = await clerk.handle(
        "backoffice.count",
        {"txn_id": "CON-1", "kind": "cash", "denominations": {"100": "four"}},
    )
    assert bad is not None and bad["field"] == "denominations.100"
    assert (
        await clerk.handle(
            "backoffice.count",
            {
                "txn_id": "CON-1",
                "kind": "cash",
                "amount": "500",
                "denominations": {"100": "4", "50": "2"},
                "note": "two fifties",
            },
        )
        is None
    )
    row = await until(clerk, lambda f: (c := carrier(f, "CON-1")) and c["state"] == "counted" and c)
    assert row["counted"] == "CNY 500.00" and row["actions"] == []
    assert row["note"] == "[100x4 50x2] two fifties"

    stack.event("CON-1", pb.TUBE_EVENT_CONFIRM, customer_confirmed=True)
    # The branch's events arrive live, and the posted deposit leaves the desk's list.
    await until(
        clerk,
        lambda f: (
            [e for e in f["backoffice"]["events"] if e["event"] == "posted"]
            and carrier(f, "CON-1") is None
        ),
    )
    events = clerk.state_frame()["backoffice"]["events"]
    assert [e["event"] for e in events if e["txn_id"] == "CON-1"][0] == "posted"

    assert await clerk.handle("backoffice.search", {"reference": "BLTX:K-1:CON-1"}) is None
    history = clerk.state_frame()["backoffice"]["history"]
    assert history["searched"] and [r["txn_id"] for r in history["results"]] == ["CON-1"]
    assert history["results"][0]["state"] == "posted"
    wrong = await clerk.handle("backoffice.search", {"reference": "BLTX:K-1"})
    assert wrong is not None and (wrong["status"], wrong["field"]) == (
        "INVALID_ARGUMENT",
        "reference",
    )


async def test_dispute_sent_back_and_incident_resolved(stack: Stack, clerk: ConsoleSession) -> None:
    await until(
        clerk, lambda f: f["views"] == ["backoffice", "tasks", "calls", "cheques", "recordings"]
    )
    stack.terminal("CON-D")
    await until(clerk, lambda f: carrier(f, "CON-D"))
    count = {"txn_id": "CON-D", "kind": "cash", "denominations": {"100": "4", "50": "1"}}
    assert await clerk.handle("backoffice.count", count) is None
    stack.event("CON-D", pb.TUBE_EVENT_DISPUTE, reason="dispute_return")
    row = await until(
        clerk, lambda f: (c := carrier(f, "CON-D")) and c["state"] == "disputed" and c
    )
    assert row["actions"] == ["send"]
    missing = await clerk.handle("backoffice.send", {"txn_id": "CON-D"})
    assert missing is not None and missing["field"] == "carrier_id"
    assert await clerk.handle("backoffice.send", {"txn_id": "CON-D", "carrier_id": "23"}) is None
    assert carrier(clerk.state_frame(), "CON-D")["state"] == "returning"  # type: ignore[index]

    # A dispute for a teller opens an incident; the back office resolves it on the console.
    stack.terminal("CON-T", amount="300")
    await until(clerk, lambda f: carrier(f, "CON-T"))
    count = {"txn_id": "CON-T", "kind": "cash", "denominations": {"100": "2"}}
    assert await clerk.handle("backoffice.count", count) is None
    stack.event("CON-T", pb.TUBE_EVENT_DISPUTE, reason="dispute_teller")
    incidents = await until(
        clerk,
        lambda f: [i for i in f["backoffice"]["incidents"] if i["txn_id"] == "CON-T"],
    )
    number = str(incidents[0]["incident_id"])
    empty = await clerk.handle("backoffice.resolve", {"incident_id": number, "resolution": " "})
    assert empty is not None and empty["field"] == "resolution"
    done = {"incident_id": number, "resolution": "recounted with the customer: 200.00"}
    assert await clerk.handle("backoffice.resolve", done) is None
    assert not [i for i in clerk.state_frame()["backoffice"]["incidents"] if i["txn_id"] == "CON-T"]


async def test_roles_see_only_their_own_work(stack: Stack) -> None:
    stack.terminal("CON-R")
    plain = ConsoleSession(stack.settings("teller:T-9"))
    other = ConsoleSession(stack.settings("teller:BO-2"))
    ops = ConsoleSession(stack.settings("operator:ops"))
    for session in (plain, other, ops):
        await session.start()
    try:
        await until(plain, lambda f: f["signed_in"])
        assert (
            plain.state_frame()["views"] == ["tasks", "calls", "assistant", "recordings"]
            and "backoffice" not in plain.state_frame()
        )
        refused = await plain.handle("backoffice.search", {"reference": "BLTX:K-1:CON-R"})
        assert refused is not None
        assert (refused["status"], refused["reason"]) == ("PERMISSION_DENIED", "role_view")
        # The server refuses the call all the same (the console is not the only guard).
        with pytest.raises(Exception) as caught:
            await plain.client.call(plain.client.tube.ListTransactions, pb.ListTubeRequest())
        assert "back_office skill" in str(caught.value)

        await until(
            other,
            lambda f: (
                f["views"] == ["backoffice", "tasks", "calls", "cheques", "recordings"]
                and f["server"] == "online"
            ),
        )
        await until(other, lambda f: "backoffice" in f)
        assert carrier(other.state_frame(), "CON-R") is None
        refused = await other.handle("backoffice.receive", {"txn_id": "CON-R"})
        assert refused is not None and refused["status"] == "FAILED_PRECONDITION"
        with pytest.raises(Exception) as caught:
            await other.client.call(
                other.client.tube.ReceiveCarrier, pb.CarrierRequest(txn_id="CON-R", carrier_id=17)
            )
        assert "handled by its own back office" in str(caught.value)
        found = await other.handle("backoffice.search", {"reference": "BLTX:K-1:CON-R"})
        assert found is None and other.state_frame()["backoffice"]["history"]["results"] == []

        board = await until(ops, lambda f: f.get("fleet", {}).get("terminals"))
        assert {t["terminal_id"] for t in board} == {"K-1", "K-2", "K-9"}
        refused = await ops.handle("backoffice.search", {})
        assert refused is not None and refused["reason"] == "role_view"
        bogus = await ops.handle("fleet.filter", {"status": "sleepy"})
        assert bogus is not None and bogus["field"] == "status"
        assert await ops.handle("fleet.filter", {"branch": "BR-2"}) is None
        shown = ops.state_frame()["fleet"]["terminals"]
        assert [t["terminal_id"] for t in shown] == ["K-9"]
        assert await ops.handle("fleet.select", {"terminal_id": "K-9"}) is None
        assert ops.state_frame()["fleet"]["detail"]["terminal_id"] == "K-9"
        unknown = await ops.handle("fleet.select", {"terminal_id": "K-404"})
        assert unknown is not None and unknown["field"] == "terminal_id"
    finally:
        for session in (plain, other, ops):
            await session.stop()


async def test_console_reconnects_after_the_server_restarts(tmp_path: Path) -> None:
    """The server goes away and comes back on the same address: the console says so, then
    follows the branch again by itself, missing none of the carriers sent meanwhile."""
    async with restartable_stack(tmp_path) as (stack, restart):
        clerk = ConsoleSession(stack.settings("teller:BO-1"))
        await clerk.start()
        try:
            await until(clerk, lambda f: f["server"] == "online" and "backoffice" in f)
            await restart(lambda: stack.terminal("CON-AWAY"))
            await until(clerk, lambda f: f["server"] == "connecting")
            row = await until(clerk, lambda f: f["server"] == "online" and carrier(f, "CON-AWAY"))
            assert row["state"] == "in_transit"
        finally:
            await clerk.stop()


async def test_metal_weighed_in_grams(stack: Stack, clerk: ConsoleSession) -> None:
    await until(clerk, lambda f: "backoffice" in f)
    session = SESSIONS.issue("K-1", "card-token-c1", "c1", Clock()())
    gold = tube_open(DEPOSIT, stack.books.metal, metal("12.5"), "CON-AU", session=session)
    assert stack.svc.handle_open("K-1", gold).code == ""
    stack.event("CON-AU", pb.TUBE_EVENT_CARRIER_SENT, carrier_id=31)
    row = await until(clerk, lambda f: carrier(f, "CON-AU"))
    assert row["asset"] == "metal" and row["denominations"] == []
    assert row["declared"] == "12.500 g gold"
    empty = await clerk.handle("backoffice.count", {"txn_id": "CON-AU", "kind": "metal"})
    assert empty is not None and empty["field"] == "amount"
    weighed = {"txn_id": "CON-AU", "kind": "metal", "amount": "12.480", "note": "scale 2"}
    assert await clerk.handle("backoffice.count", weighed) is None
    row = await until(
        clerk, lambda f: (c := carrier(f, "CON-AU")) and c["state"] == "counted" and c
    )
    assert row["counted"] == "12.480 g gold"


async def test_withdrawal_carrier_sent_from_the_console(
    stack: Stack, clerk: ConsoleSession
) -> None:
    await until(clerk, lambda f: "backoffice" in f)
    session = SESSIONS.issue("K-1", "card-token-c1", "c1", Clock()())
    cash_out = tube_open(WITHDRAWAL, stack.books.cash, cash("100"), "CON-W", session=session)
    assert stack.svc.handle_open("K-1", cash_out).code == ""
    row = await until(clerk, lambda f: carrier(f, "CON-W"))
    assert (row["kind"], row["state"], row["actions"]) == ("withdrawal", "open", ["prepare"])
    assert clerk.state_frame()["backoffice"]["record"] is None
    # Sent only once prepared: loading the carrier is what the back-office camera records.
    early = await clerk.handle("backoffice.send", {"txn_id": "CON-W", "carrier_id": "8"})
    assert early is not None and early["reason"] == "prepare_first", early
    assert await clerk.handle("backoffice.prepare", {"txn_id": "CON-W"}) is None
    assert (carrier(clerk.state_frame(), "CON-W") or {}).get("actions") == ["send"]
    record = clerk.state_frame()["backoffice"]["record"]
    assert record == {"txn_ref": "CON-W", "kind": "tube", "source": "backoffice"}
    bad = await clerk.handle("backoffice.send", {"txn_id": "CON-W", "carrier_id": "0"})
    assert bad is not None and bad["field"] == "carrier_id"
    assert await clerk.handle("backoffice.send", {"txn_id": "CON-W", "carrier_id": "8"}) is None
    row = await until(
        clerk, lambda f: (c := carrier(f, "CON-W")) and c["state"] == "dispatched" and c
    )
    assert row["carrier_id"] == 8 and row["actions"] == []
    # Sent: the carrier has left the back office's hands, the recording stops.
    assert clerk.state_frame()["backoffice"]["record"] is None
    again = await clerk.handle("backoffice.prepare", {"txn_id": "CON-W"})
    assert again is not None and again["reason"] == "wrong_state", again
