"""The ``cheque_update`` push over one real TerminalLink: the agent's real Uplink, outbox sender
and cheque engine start a purchase (purchase-code method) on a loopback server; while the
customer is at the ID-card step the desk unloads and reloads the terminal's stock and the
sweep opens a stale incident. Each change reaches the terminal's live purchase by a push (the
engine does not poll in a customer's stage), and the kiosk's view of it follows."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from branchline.agent.cheques import customer
from branchline.agent.cheques import machine as m
from branchline.agent.cheques.engine import Live
from branchline.agent.config import TerminalConfig, TransactionSettings
from branchline.agent.service_state import ServiceState
from branchline.agent.uplink import Uplink
from branchline.server.auth import PRINCIPAL_METADATA_KEY, Authorizer
from branchline.server.cheques import admin
from branchline.server.cheques.capability import sweep
from branchline.server.cheques.link import install_cheques
from branchline.server.cheques.servicer import ChequeDeskServicer
from branchline.server.link import TerminalLinkServicer
from branchline.server.storage import open_database
from branchline.v1 import cheques_pb2 as pb
from branchline.v1 import cheques_pb2_grpc as pb_grpc
from branchline.v1 import terminal_link_pb2_grpc as link_grpc
from tests.unit.cheque_fakes import make_world as make_terminal
from tests.unit.cheque_support import BASIC, BRANCH, TERMINAL, add_desk_staff, make_world
from tests.unit.sqlite_template import migrated_sqlite

pytestmark = pytest.mark.timeout(120)
DESK = {"metadata": ((PRINCIPAL_METADATA_KEY, "teller:BO-1"),), "timeout": 30}


async def until(live: Live, done: Callable[[Live], bool], what: str) -> None:
    """Until ``done(live)``, woken by the engine's changes (no polling)."""

    async def wait() -> None:
        while not done(live):
            changed = live.changed
            await changed.wait()

    try:
        await asyncio.wait_for(wait(), 20)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


def offer(live: Live, book_type: str) -> pb.BookOffer:
    assert live.server is not None
    (found,) = [o for o in live.server.offers if o.book_type == book_type]
    return found


# long: one scenario in order, each step depending on the state the last one left
def test_desk_and_sweep_changes_are_pushed_to_the_terminal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = open_database(migrated_sqlite(tmp_path / "server.db"))
    world = make_world(engine)
    add_desk_staff(engine)
    code, _ = admin.issue_code(engine, BASIC.account_id, "staff:S1", world.clock())

    # long: the scenario itself
    async def scenario() -> None:
        link = TerminalLinkServicer(engine, "r1", 5.0, Authorizer(insecure=True))
        install_cheques(link, world.core)
        server = grpc.aio.server()
        link_grpc.add_TerminalLinkServicer_to_server(link, server)
        pb_grpc.add_ChequeDeskServicer_to_server(
            ChequeDeskServicer(world.core, Authorizer(insecure=True)), server
        )
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        config = TerminalConfig(
            terminal_id=TERMINAL, branch=BRANCH, kind="self_service",
            server=f"127.0.0.1:{port}", state_dir=tmp_path, heartbeat_interval=5.0,
            tls=None, required_devices=(),
        )  # fmt: skip
        uplink = Uplink(config, list, lambda: ServiceState.IN_SERVICE)
        terminal = make_terminal(
            tmp_path / "agent",
            settings=TransactionSettings(customer_timeout=600.0, poll_seconds=0.2),
            uplink=uplink,
            terminal_id=TERMINAL,
        )
        running = asyncio.create_task(uplink.run())
        tasks: list[asyncio.Task[Any]] = [running, terminal.sender_task]
        closing: list[grpc.aio.Channel] = []
        try:
            live = await customer.start_code(terminal.engine, BASIC.account_number, code)
            assert live.stage == m.AWAITING_ID, (live.code, live.message)
            before = offer(live, "cash_cheque")
            assert before.books_in_stock > 0 and before.refused_rule == ""

            # The desk unloads the terminal's cash cheques: the purchase's offers follow.
            channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
            closing.append(channel)
            desk = pb_grpc.ChequeDeskStub(channel)
            stock = await desk.ListStock(pb.ListStockRequest(), **DESK)
            (cash,) = [r for r in stock.ranges if r.book_type == "cash_cheque"]
            await desk.UnloadStock(pb.StockRangeRef(range_id=cash.range_id), **DESK)
            await until(live, lambda x: offer(x, "cash_cheque").refused_rule == "no_stock", "out")
            assert offer(live, "cash_cheque").books_in_stock == 0
            assert offer(live, "transfer_cheque").books_in_stock > 0  # untouched
            shown = customer.view(terminal.engine, live)["offers"]
            assert {o["book_type"]: o["refused_rule"] for o in shown}["cash_cheque"] == "no_stock"
            assert live.stage == m.AWAITING_ID  # a hint for the screen, not a step

            # Loaded again: back in stock, pushed again.
            await desk.LoadStock(
                pb.LoadStockRequest(
                    terminal_id=TERMINAL,
                    book_type="cash_cheque",
                    first_serial=20000101,
                    last_serial=20000150,
                ),
                **DESK,
            )
            await until(live, lambda x: offer(x, "cash_cheque").books_in_stock > 0, "back in")

            # Left unfinished: the sweep (through the link's applier) opens a stale
            # incident, and the terminal learns its number (printed on the receipt).
            world.clock.advance(minutes=31)
            sweeper = asyncio.create_task(sweep(world.core, 3600.0, link.applier))
            tasks.append(sweeper)
            await until(live, lambda x: bool(x.server and x.server.incident_id), "the incident")
            assert live.server is not None
            assert live.server.state == pb.CHEQUE_STATE_STARTED
        finally:
            await terminal.engine.stop()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for channel in closing:
                await channel.close(None)
            await server.stop(1.0)

    with caplog.at_level(logging.DEBUG, logger="branchline.server.cheques.link"):
        asyncio.run(scenario())
    pushed = [r for r in caplog.records if r.getMessage() == "cheque_pushed"]
    assert len(pushed) == 3, [r.getMessage() for r in caplog.records]
    engine.dispose()
