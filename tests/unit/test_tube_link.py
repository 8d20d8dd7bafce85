"""Tube messages on a real TerminalLink stream: a grpc.aio server on a loopback port, a raw
stream from the test playing the terminal. Replies carry ack_seq; the back office's changes
are pushed (ack_seq 0); bad or failing messages get a named refusal and the stream lives on.
Garbage TubeOpen / TubeEvent messages (hypothesis) never crash the service and always get
a stable code with a message naming a field."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from branchline.server.auth import Authorizer
from branchline.server.ledger.adapter import EmbeddedLedger
from branchline.server.link import TerminalLinkServicer
from branchline.server.storage import open_database
from branchline.server.tube.link import install_tube
from branchline.server.tube.service import TubeService
from branchline.v1 import common_pb2
from branchline.v1 import terminal_link_pb2 as link_pb
from branchline.v1 import terminal_link_pb2_grpc as link_grpc
from branchline.v1 import tube_pb2 as pb
from tests.unit.sqlite_template import migrated_sqlite
from tests.unit.tube_support import (
    BO,
    DEPOSIT,
    SESSIONS,
    WITHDRAWAL,
    Books,
    Clock,
    cash,
    populate,
    tube_event,
    tube_open,
)

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, Books]]:
    engine = open_database(migrated_sqlite(tmp_path_factory.mktemp("tube") / "server.db"))
    books = populate(engine)
    yield engine, books
    engine.dispose()


class Terminal:
    """The terminal's end of one TerminalLink stream, message by message."""

    def __init__(self, stub: link_grpc.TerminalLinkStub) -> None:
        self._out: asyncio.Queue[link_pb.TerminalMessage | None] = asyncio.Queue()
        self.call = stub.Connect(self._requests())
        self.seq = 0

    async def _requests(self) -> AsyncIterator[link_pb.TerminalMessage]:
        while True:
            message = await self._out.get()
            if message is None:
                return
            yield message

    async def send(self, **body: Any) -> int:
        self.seq += 1
        await self._out.put(link_pb.TerminalMessage(seq=self.seq, **body))
        return self.seq

    async def read(self) -> link_pb.ServerMessage:
        message = await asyncio.wait_for(self.call.read(), 10)
        assert isinstance(message, link_pb.ServerMessage), "the stream ended"
        return message

    async def ask(self, **body: Any) -> link_pb.ServerMessage:
        seq = await self.send(**body)
        reply = await self.read()
        assert reply.ack_seq == seq, reply
        return reply

    async def close(self) -> None:
        await self._out.put(None)


async def _serve(svc: TubeService, engine: Engine) -> tuple[grpc.aio.Server, int]:
    link = TerminalLinkServicer(engine, "r1", 5.0, Authorizer(insecure=True))
    install_tube(link, svc)
    server = grpc.aio.server()
    link_grpc.add_TerminalLinkServicer_to_server(link, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port


# long: one end-to-end scenario, step by step, over one stack of processes
def test_open_event_query_push_and_refusals_over_the_stream(
    shared: tuple[Engine, Books], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, books = shared
    svc = TubeService(engine, EmbeddedLedger(engine), SESSIONS, clock=Clock())

    # long: one end-to-end scenario, step by step, over one stack of processes
    async def scenario() -> None:
        server, port = await _serve(svc, engine)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        k1 = Terminal(link_grpc.TerminalLinkStub(channel))
        ack = await k1.ask(
            register=link_pb.Register(
                terminal_id="K-1", branch="BR-1", kind=common_pb2.TERMINAL_KIND_SELF_SERVICE
            )
        )
        assert ack.HasField("register_ack")
        opened = await k1.ask(tube_open=tube_open(DEPOSIT, books.cash, cash("100"), "L1"))
        assert opened.tube_reply.code == "" and opened.tube_reply.request_id == "L1-open"
        assert opened.tube_reply.txn.state == pb.TUBE_STATE_OPEN
        sent = await k1.ask(
            tube_event=tube_event("L1", pb.TUBE_EVENT_CARRIER_SENT, "K-1:2", carrier_id=11)
        )
        assert sent.tube_reply.txn.state == pb.TUBE_STATE_IN_TRANSIT
        # The back office takes the carrier in: the terminal is told at once (ack_seq 0).
        await asyncio.to_thread(svc.receive_carrier, BO, "L1", 11)
        pushed = await k1.read()
        assert pushed.ack_seq == 0 and pushed.WhichOneof("body") == "tube_update"
        assert (pushed.tube_update.state, pushed.tube_update.updated_by) == (
            pb.TUBE_STATE_RECEIVED,
            "teller:BO-1",
        )
        listed = await k1.ask(tube_query=pb.TubeQuery())
        assert [t.txn_id for t in listed.tube_reply.txns] == ["L1"]
        one = await k1.ask(tube_query=pb.TubeQuery(txn_id="L1"))
        assert one.tube_reply.txn.state == pb.TUBE_STATE_RECEIVED
        # A message full of nothing: a named refusal, and the stream carries on.
        empty = await k1.ask(tube_open=pb.TubeOpen())
        assert (empty.tube_reply.code, empty.tube_reply.message) == (
            "invalid_argument",
            "tube_open.request_id: must not be empty",
        )
        assert empty.tube_reply.field == "tube_open.request_id"
        # The refused field travels as data, the ledger's own refusals named for tube_open.
        negative = await k1.ask(tube_open=tube_open(DEPOSIT, books.cash, cash("-5"), "L2"))
        assert (negative.tube_reply.code, negative.tube_reply.field) == (
            "negative_amount",
            "tube_open.asset.amount",
        )
        broke = await k1.ask(tube_open=tube_open(WITHDRAWAL, books.cash, cash("5000"), "L3"))
        assert (broke.tube_reply.code, broke.tube_reply.field) == (
            "insufficient_funds",
            "tube_open.asset.amount",
        )
        assert broke.tube_reply.message.startswith("tube_open.asset.amount: ")
        assert not broke.tube_reply.HasField("txn")
        unknown = await k1.ask(tube_event=tube_event("NOPE", pb.TUBE_EVENT_CANCEL, "K-1:9"))
        assert unknown.tube_reply.code == "not_found"
        # The server failing: "unavailable", not stored, so the same request works later.
        real = svc.handle_event

        def broken(*args: Any, **kw: Any) -> Any:
            raise RuntimeError("database went away")

        monkeypatch.setattr(svc, "handle_event", broken)
        cancel = tube_event("L1", pb.TUBE_EVENT_HANDOVER, "K-1:10", reason="recovery")
        failed = await k1.ask(tube_event=cancel)
        assert (failed.tube_reply.code, failed.tube_reply.request_id) == ("unavailable", "K-1:10")
        monkeypatch.setattr(svc, "handle_event", real)
        retried = await k1.ask(tube_event=cancel)
        assert retried.tube_reply.txn.state == pb.TUBE_STATE_HANDED_TO_TELLER
        alive = await k1.ask(
            heartbeat=link_pb.Heartbeat(service_state=common_pb2.SERVICE_STATE_IN_SERVICE)
        )
        assert alive.HasField("heartbeat_ack")
        await k1.close()
        await channel.close(None)
        # A push for a terminal that is not connected here is dropped quietly.
        await asyncio.to_thread(svc.list_transactions, BO)
        await server.stop(0)

    asyncio.run(scenario())


# -- garbage never crashes ----------------------------------------------------------------------

_text = st.one_of(
    st.text(max_size=80),
    st.sampled_from(
        ["", "CNY", "USD", "XAU", "-1", "1e9", "NaN", "0.001", "100", "A-CNY", "B-CNY"]
    ),
)
_assets = st.builds(
    pb.TubeAsset,
    kind=st.integers(min_value=0, max_value=5),
    currency=_text,
    amount=_text,
    bill=st.builds(pb.BillInfo, bill_id=_text, instrument=_text, maturity=_text),
)


@st.composite
def _opens(draw: Any) -> pb.TubeOpen:
    return pb.TubeOpen(
        request_id=draw(st.one_of(st.text(max_size=140), st.uuids().map(str))),
        txn_id=draw(st.one_of(st.text(max_size=70), st.uuids().map(str))),
        kind=draw(st.integers(min_value=0, max_value=4)),
        session_token=draw(st.one_of(_text, st.just(SESSIONS.issue("K-1", "x", "c1", Clock()())))),
        account_id=draw(_text),
        asset=draw(_assets),
        rate_version=draw(st.integers(min_value=0, max_value=2**64 - 1)),
    )


@st.composite
def _events(draw: Any) -> pb.TubeEvent:
    return pb.TubeEvent(
        request_id=draw(st.one_of(st.text(max_size=140), st.uuids().map(str))),
        txn_id=draw(st.one_of(st.text(max_size=70), st.just("GARBAGE-1"))),
        kind=draw(st.integers(min_value=0, max_value=9)),
        carrier_id=draw(st.integers(min_value=0, max_value=2**32 - 1)),
        customer_confirmed=draw(st.booleans()),
        reason=draw(st.one_of(_text, st.sampled_from(["lost", "dispute_teller", "recovery"]))),
        detail=draw(st.text(max_size=600)),
    )


_FIELD = ("tube_open", "tube_event")


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(message=_opens())
def test_garbage_opens_get_a_named_refusal(
    shared: tuple[Engine, Books], message: pb.TubeOpen
) -> None:
    engine, _ = shared
    svc = TubeService(engine, EmbeddedLedger(engine), SESSIONS, clock=Clock())
    reply = svc.handle_open("K-1", message)
    if reply.code:
        assert reply.message.startswith("tube_open"), reply.message
        assert reply.code.replace("_", "").isalpha(), reply.code
        # The field, when there is one, is data and is the path the message leads with.
        assert not reply.field or reply.message.startswith(f"{reply.field}: "), reply
    else:  # the rare well-formed one was simply opened
        assert reply.txn.txn_id == message.txn_id


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(message=_events())
def test_garbage_events_get_a_named_refusal(
    shared: tuple[Engine, Books], message: pb.TubeEvent
) -> None:
    engine, books = shared
    svc = TubeService(engine, EmbeddedLedger(engine), SESSIONS, clock=Clock())
    svc.handle_open("K-1", tube_open(DEPOSIT, books.cash, cash("1"), "GARBAGE-1", "garbage-open"))
    reply = svc.handle_event("K-1", message)
    if reply.code:
        assert reply.message.startswith("tube_event"), reply.message
        assert reply.code.replace("_", "").isalpha(), reply.code
        # The field, when there is one, is data and is the path the message leads with.
        assert not reply.field or reply.message.startswith(f"{reply.field}: "), reply
    assert svc.query("K-1", "GARBAGE-1").txn.txn_id == "GARBAGE-1"


def test_a_push_for_a_terminal_elsewhere_is_dropped(
    shared: tuple[Engine, Books], caplog: pytest.LogCaptureFixture
) -> None:
    engine, _ = shared
    link = TerminalLinkServicer(engine, "r1", 5.0, Authorizer(insecure=True))
    svc = TubeService(engine, EmbeddedLedger(engine), SESSIONS)
    # The push runs as an event-loop callback, where an exception would only be handed to the
    # loop's exception handler: collect what reaches it and assert on it afterwards.
    escaped: list[dict[str, Any]] = []

    async def scenario() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: escaped.append(ctx))
        pusher = install_tube(link, svc)
        pusher.notify(pb.TubeTransaction(txn_id="X", terminal_id="K-404", updated_by="teller:BO-1"))
        await asyncio.sleep(0.05)  # the callback ran on the loop

    with caplog.at_level(logging.DEBUG, logger="branchline.server.tube.link"):
        asyncio.run(scenario())
    assert escaped == [], [ctx.get("exception") for ctx in escaped]
    dropped = [r for r in caplog.records if r.getMessage() == "tube_push_dropped"]
    assert len(dropped) == 1, [r.getMessage() for r in caplog.records]
    assert "K-404" in str(dropped[0].__dict__), dropped[0].__dict__
    assert not [r for r in caplog.records if r.getMessage() == "tube_pushed"]
