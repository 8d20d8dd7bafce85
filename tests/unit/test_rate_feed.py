"""The FX rate feed: a new version in the database reaches every connected terminal's RateBook;
a terminal gets the current table on registration; the book persists and is stale until
confirmed. Real TerminalLink servicer and real Uplink over a loopback socket."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import grpc
import pytest
from sqlalchemy import Engine

from branchline.agent.customer_info_api import CustomerInfoServicer
from branchline.agent.rates import BadRateTable, RateBook
from branchline.agent.service_state import ServiceState
from branchline.agent.uplink import Uplink
from branchline.common.errors import InvalidArgument
from branchline.server.auth import Authorizer
from branchline.server.ledger.fx import set_rates
from branchline.server.link import TerminalLinkServicer
from branchline.server.main import main as server_main
from branchline.server.rates.feed import RateFeed, latest_version
from branchline.server.storage import open_database
from branchline.v1 import customer_info_pb2 as info_pb
from branchline.v1 import terminal_link_pb2_grpc as pb_grpc
from tests.unit.link_support import loopback_terminal
from tests.unit.sqlite_template import migrated_sqlite

pytestmark = pytest.mark.timeout(60)
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


async def _until(condition: object, what: str, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():  # type: ignore[operator]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def _uplink(terminal_id: str, port: int, state_dir: Path) -> tuple[Uplink, RateBook]:
    state_dir.mkdir(exist_ok=True)
    config = loopback_terminal(terminal_id, port, state_dir)
    uplink = Uplink(config, lambda: [], lambda: ServiceState.IN_SERVICE)
    book = RateBook(state_dir, lambda: uplink.connected)
    uplink.on_push("rate_update", book.on_push)
    return uplink, book


def _bid(book: RateBook, currency: str) -> str | None:
    assert book.current is not None
    return next((r.bid for r in book.current.rates if r.currency == currency), None)


def test_new_versions_are_broadcast_and_each_registration_gets_the_table(tmp_path: Path) -> None:
    async def scenario() -> None:
        engine = open_database(migrated_sqlite(tmp_path / "server.db"))
        servicer = TerminalLinkServicer(engine, "r1", 5.0, Authorizer(insecure=True))
        feed = RateFeed(engine, servicer.broadcast, servicer.push, poll_seconds=0.05)
        servicer.on_connect(feed.on_connect)
        server = grpc.aio.server()
        pb_grpc.add_TerminalLinkServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        # Rates set before anyone connects, by "another process" (straight into the DB).
        set_rates(engine, {"USD": ("7.1", "7.2"), "XAU": ("540.5", "548")}, "test", NOW)
        assert latest_version(engine) == 1
        poller = asyncio.create_task(feed.run())
        first, first_book = _uplink("T-1", port, tmp_path / "t1")
        second, second_book = _uplink("T-2", port, tmp_path / "t2")
        runners = [asyncio.create_task(u.run()) for u in (first, second)]
        # On registration each terminal is sent the current table.
        await _until(lambda: first_book.current and second_book.current, "the tables on connect")
        assert first_book.current is not None and first_book.current.version == 1
        assert _bid(first_book, "XAU") == "540.5" and not first_book.stale

        # A new version — the poll notices it and pushes it to both terminals.
        set_rates(engine, {"USD": ("7.15", "7.25")}, "test", NOW)
        for book in (first_book, second_book):
            await _until(lambda b=book: b.current.version == 2, "the broadcast")  # type: ignore[misc]
            assert _bid(book, "USD") == "7.15" and _bid(book, "XAU") == "540.5"
        view = second_book.view()
        assert view.known and not view.stale and view.table.version == 2
        assert [(r.currency, r.bid, r.ask) for r in view.table.rates] == [
            ("USD", "7.15", "7.25"),
            ("XAU", "540.5", "548"),
        ]
        # Nothing new: the poll does not broadcast again.
        assert await feed.check() is False

        for runner in (*runners, poller):
            runner.cancel()
        await asyncio.gather(*runners, poller, return_exceptions=True)
        # Down link: what the terminal shows is stale at once.
        assert first_book.stale
        await server.stop(0)
        engine.dispose()

    asyncio.run(scenario())


def test_the_book_survives_a_restart_stale_until_the_server_confirms(tmp_path: Path) -> None:
    async def scenario() -> None:
        table = info_pb.RateTable(
            version=7,
            base_currency="CNY",
            source="treasury",
            rates=[info_pb.RateEntry(currency="USD", bid="7.1", ask="7.2")],
        )
        table.as_of.FromDatetime(NOW)
        book = RateBook(tmp_path)
        assert book.view().known is False and book.stale
        await book.accept(table)
        assert not book.stale

        restarted = RateBook(tmp_path)
        assert restarted.current is not None and restarted.current.version == 7
        assert restarted.current.as_of == NOW
        view = restarted.view()
        assert view.known and view.stale and view.table.rates[0].bid == "7.1"
        # The server confirms (the same version on registration): fresh again.
        await restarted.accept(table)
        assert not restarted.stale
        # An older table from a lagging replica never rolls the rates back.
        older = info_pb.RateTable()
        older.CopyFrom(table)
        older.version = 6
        await restarted.accept(older)
        assert restarted.current.version == 7

        bad = info_pb.RateTable()
        bad.CopyFrom(table)
        bad.rates[0].bid = "seven"
        with pytest.raises(BadRateTable, match=r"rates\[USD\]\.bid: 'seven' is not a decimal"):
            await restarted.accept(bad)

    asyncio.run(scenario())


def test_watch_rates_streams_the_table_then_each_change(tmp_path: Path) -> None:
    async def scenario() -> None:
        book = RateBook(tmp_path)
        agent: Any = SimpleNamespace(rates=book)
        stream = CustomerInfoServicer(agent).WatchRates(info_pb.GetRatesRequest(), None)  # type: ignore[arg-type]
        first = await anext(stream)
        assert not first.known and first.stale
        following = asyncio.ensure_future(anext(stream))
        table = info_pb.RateTable(
            version=3, rates=[info_pb.RateEntry(currency="EUR", bid="7.7", ask="7.9")]
        )
        await book.accept(table)
        second = await asyncio.wait_for(following, 5)
        assert second.known and not second.stale and second.table.rates[0].ask == "7.9"
        await stream.aclose()  # type: ignore[attr-defined]

    asyncio.run(scenario())


def test_an_unreadable_rates_file_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "rates.json").write_text("{not json")
    book = RateBook(tmp_path)
    assert book.current is None and book.view().known is False


def test_the_poll_interval_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    assert server_main(["--insecure-loopback", "--rate-poll-seconds", "0"]) == 2
    assert "--rate-poll-seconds must be more than 0" in capsys.readouterr().err
    # The feed itself refuses it too, naming the parameter.
    with pytest.raises(InvalidArgument, match="poll_seconds: must be more than zero") as refused:
        RateFeed(cast(Engine, None), lambda message: 0, lambda terminal, message: None, 0)
    assert refused.value.field == "poll_seconds"
