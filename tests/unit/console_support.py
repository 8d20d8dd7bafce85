"""A real server for the console tests, in the test's event loop: TubeDesk, Dispatch and Fleet
over mTLS with the dev PKI, on a populated database (tube_support's branches, tellers,
customers and accounts). The terminal's side of a tube transaction is driven through the
server's own TubeService, as TerminalLink would."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest_asyncio
from sqlalchemy import Engine

from branchline.server import pki
from branchline.server.auth import Authorizer
from branchline.server.console.session import ConsoleSession
from branchline.server.console.settings import (
    ConsoleSettings,
    credentials_for,
    parse_identity,
)
from branchline.server.dispatch import call_servicer
from branchline.server.dispatch import servicer as dispatch
from branchline.server.dispatch.calls import CallService
from branchline.server.dispatch.model import Actor
from branchline.server.dispatch.tasks import DispatchService
from branchline.server.fleet.servicer import FleetServicer
from branchline.server.ledger.adapter import EmbeddedLedger
from branchline.server.storage import open_database
from branchline.server.tube import servicer as tube
from branchline.server.tube.service import TubeService
from branchline.v1 import calls_pb2_grpc, fleet_pb2_grpc, tube_pb2_grpc
from branchline.v1 import tube_pb2 as pb
from tests.unit.sqlite_template import migrated_sqlite
from tests.unit.tube_support import DEPOSIT, SESSIONS, Books, Clock, cash, populate, tube_event
from tests.unit.tube_support import tube_open as open_message

# A mobile counter of BR-2 that sends tasks, and a 1x1 PNG it uploads as a material.
COUNTER = Actor("terminal", "MC-9")
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)

# What runs while the server is down (restartable_stack): plain, or a coroutine function.
Meanwhile = Callable[[], Awaitable[None] | None]


@dataclass
class Stack:
    engine: Engine
    books: Books
    svc: TubeService
    pki: Path
    port: int
    dispatch: DispatchService
    calls: CallService

    def settings(self, who: str, lang: str = "en") -> ConsoleSettings:
        identity = parse_identity(who)
        return ConsoleSettings(
            target=f"127.0.0.1:{self.port}",
            identity=identity,
            credentials=credentials_for(identity, self.pki),
            host="127.0.0.1",
            port=0,
            lang=lang,
        )

    def terminal(self, txn: str, terminal: str = "K-1", amount: str = "500") -> None:
        """A customer at ``terminal`` opened a cash deposit and the carrier left."""
        session = SESSIONS.issue(terminal, "card-token-c1", "c1", Clock()())
        opened = self.svc.handle_open(
            terminal, open_message(DEPOSIT, self.books.cash, cash(amount), txn, session=session)
        )
        assert opened.code == "", opened.message
        self.event(txn, pb.TUBE_EVENT_CARRIER_SENT, terminal, carrier_id=17)

    def event(self, txn: str, kind: int, terminal: str = "K-1", **kw: Any) -> pb.TubeTransaction:
        reply = self.svc.handle_event(terminal, tube_event(txn, kind, f"{txn}-{kind}", **kw))
        assert reply.code == "", reply.message
        return reply.txn


@contextlib.asynccontextmanager
async def restartable_stack(
    tmp_path: Path,
) -> AsyncIterator[tuple[Stack, Callable[[Meanwhile], Awaitable[None]]]]:
    """The stack, and ``restart(meanwhile)``: stop the server, run ``meanwhile`` (the
    database stays; a coroutine function is awaited), start a new server on the same port."""
    layout = pki.init_pki(
        tmp_path / "pki",
        ["K-1"],
        tellers=["BO-1", "BO-2", "T-9", "T-1"],
        lobby_managers=["L1"],
        operators=["ops"],
    )
    engine = open_database(migrated_sqlite(tmp_path / "server.db"))
    books = populate(engine)
    svc = TubeService(engine, EmbeddedLedger(engine), SESSIONS, clock=Clock())
    tasks = DispatchService(engine)
    tasks.add_teller("T-1", "Teller one", "BR-1", ["loan"])
    tasks.add_lobby_manager("L1", "Lobby one", "BR-1")
    calls = CallService(tasks)
    credentials = grpc.ssl_server_credentials(
        [(layout.server_key.read_bytes(), layout.server_cert.read_bytes())],
        root_certificates=layout.ca_cert.read_bytes(),
        require_client_auth=True,
    )

    async def serve(port: int) -> tuple[grpc.aio.Server, int]:
        auth = Authorizer(insecure=False)
        server = grpc.aio.server()
        tube_pb2_grpc.add_TubeDeskServicer_to_server(tube.TubeDeskServicer(svc, auth), server)
        dispatch.add_dispatch_services(server, tasks, auth, engine)
        calls_pb2_grpc.add_CallsServicer_to_server(call_servicer.CallsServicer(calls, auth), server)
        fleet_pb2_grpc.add_FleetServicer_to_server(FleetServicer(engine, auth), server)
        bound = server.add_secure_port(f"127.0.0.1:{port}", credentials)
        await server.start()
        return server, bound

    server, port = await serve(0)
    current = [server]

    async def restart(meanwhile: Meanwhile) -> None:
        await current[0].stop(0)
        done = meanwhile()
        if inspect.isawaitable(done):
            await done
        await asyncio.sleep(1.0)
        current[0], _ = await serve(port)

    try:
        yield Stack(engine, books, svc, layout.directory, port, tasks, calls), restart
    finally:
        await current[0].stop(0)
        engine.dispose()


@pytest_asyncio.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with restartable_stack(tmp_path) as (started, _):
        yield started


async def until(session: ConsoleSession, check: Callable[[dict[str, Any]], Any]) -> Any:
    """Wait (at most 10 s) for a published state that ``check`` finds something in."""
    deadline = time.monotonic() + 10
    while True:
        frame = session.state_frame()
        found = check(frame)
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"state never matched; last: {frame}")
        session.changed.clear()
        try:
            await asyncio.wait_for(session.changed.wait(), 0.5)
        except TimeoutError:
            pass


def carrier(frame: dict[str, Any], txn: str) -> dict[str, Any] | None:
    for row in frame.get("backoffice", {}).get("carriers", []):
        if row["txn_id"] == txn:
            return dict(row)
    return None
