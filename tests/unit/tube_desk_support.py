"""The back office's TubeDesk in unit tests: the servicer over gRPC with TLS on a loopback port
(a module-scoped fixture), stubs and CLI arguments as a given certificate holder, and a
deposit already sent from a terminal."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from sqlalchemy import Engine

from branchline.server import pki
from branchline.server.auth import Authorizer
from branchline.server.ledger.adapter import EmbeddedLedger
from branchline.server.storage import open_database
from branchline.server.tube.service import TubeService
from branchline.server.tube.servicer import TubeDeskServicer
from branchline.v1 import tube_pb2 as pb
from branchline.v1 import tube_pb2_grpc as pb_grpc
from tests.unit.sqlite_template import migrated_sqlite
from tests.unit.tube_support import (
    DEPOSIT,
    SESSIONS,
    Books,
    Clock,
    cash,
    populate,
    tube_event,
    tube_open,
)

FOLDERS = {"teller": "tellers", "lobby": "lobby", "operator": "operators", "terminal": "terminals"}


@dataclass
class Desk:
    engine: Engine
    books: Books
    svc: TubeService
    pki: Path
    port: int

    def stub(self, who: str) -> pb_grpc.TubeDeskStub:
        role, _, name = who.partition(":")
        folder = self.pki / FOLDERS[role]
        credentials = grpc.ssl_channel_credentials(
            root_certificates=(self.pki / "ca.pem").read_bytes(),
            private_key=(folder / f"{name}.key").read_bytes(),
            certificate_chain=(folder / f"{name}.pem").read_bytes(),
        )
        channel = grpc.secure_channel(f"127.0.0.1:{self.port}", credentials)
        return pb_grpc.TubeDeskStub(channel)

    def cli(self, who: str, *args: str) -> list[str]:
        return [
            "--target",
            f"127.0.0.1:{self.port}",
            "--tls-dir",
            str(self.pki),
            "--as",
            who,
            "tube",
            *args,
        ]


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    root = tmp_path_factory.mktemp("desk")
    layout = pki.init_pki(
        root / "pki",
        ["K-1"],
        tellers=["BO-1", "BO-2", "T-9"],
        lobby_managers=["L1"],
        operators=["ops"],
    )
    engine = open_database(migrated_sqlite(root / "server.db"))
    books = populate(engine)
    svc = TubeService(engine, EmbeddedLedger(engine), SESSIONS, clock=Clock())
    credentials = grpc.ssl_server_credentials(
        [(layout.server_key.read_bytes(), layout.server_cert.read_bytes())],
        root_certificates=layout.ca_cert.read_bytes(),
        require_client_auth=True,
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start() -> tuple[grpc.aio.Server, int]:
        server = grpc.aio.server()
        pb_grpc.add_TubeDeskServicer_to_server(
            TubeDeskServicer(svc, Authorizer(insecure=False)), server
        )
        port = server.add_secure_port("127.0.0.1:0", credentials)
        await server.start()
        return server, port

    server, port = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    yield Desk(engine, books, svc, layout.directory, port)
    asyncio.run_coroutine_threadsafe(server.stop(0), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    engine.dispose()


def sent_deposit(desk: Desk, txn: str, terminal: str = "K-1", carrier: int = 17) -> None:
    session = SESSIONS.issue(terminal, "card-token-c1", "c1", Clock()())
    opened = desk.svc.handle_open(
        terminal, tube_open(DEPOSIT, desk.books.cash, cash("500"), txn, session=session)
    )
    assert opened.code == "", opened.message
    sent = desk.svc.handle_event(
        terminal, tube_event(txn, pb.TUBE_EVENT_CARRIER_SENT, f"{txn}-s", carrier_id=carrier)
    )
    assert sent.code == "", sent.message
