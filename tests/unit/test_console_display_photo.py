"""The branch display's ID card photo from the console's own route (cheques_web.py), against a
real ChequeDesk and Dispatch: the state names the photo by its URL and carries no bytes; the
route serves it to the back-office teller whose display shows the purchase, typed by its
bytes, not kept by the browser, each photo handed out audited by the server (cheque_audit)
and logged by the console; a purchase not on the display, one without a photo, a bad id, a
console not signed in, a role without the screen and another site's page are refused in JSON
naming what was wrong, never a 500."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
import pytest_asyncio
from sqlalchemy import select

from branchline.server.auth import Authorizer
from branchline.server.cheques.schema import cheque_audit
from branchline.server.cheques.servicer import ChequeDeskServicer
from branchline.server.console.session import ConsoleSession
from branchline.server.console.settings import ConsoleSettings, parse_identity
from branchline.server.console.web import ConsoleServer
from branchline.server.dispatch import servicer as dispatch
from branchline.server.dispatch.tasks import DispatchService
from branchline.server.storage import open_database
from branchline.v1 import cheques_pb2_grpc as pb_grpc
from tests.unit.cheque_support import FACES, World, add_desk_staff, make_world, new_pid
from tests.unit.console_support import until
from tests.unit.sqlite_template import migrated_sqlite

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120)]

PHOTO = (FACES / "obama_1.jpg").read_bytes()


@dataclass
class Bank:
    world: World
    port: int

    def settings(self, who: str, port: int | None = None) -> ConsoleSettings:
        return ConsoleSettings(
            target=f"127.0.0.1:{port or self.port}",
            identity=parse_identity(who),
            credentials=None,
            host="127.0.0.1",
            port=0,
            lang="en",
        )

    def audited(self) -> list[tuple[str, str, str]]:
        with self.world.engine.connect() as conn:
            return [
                (r.actor, r.action, r.subject)
                for r in conn.execute(
                    select(cheque_audit)
                    .where(cheque_audit.c.action == "display_photo")
                    .order_by(cheque_audit.c.audit_id)
                )
            ]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    engine = open_database(migrated_sqlite(tmp_path / "server.db"))
    made = make_world(engine)
    add_desk_staff(engine)
    yield made
    engine.dispose()


@pytest_asyncio.fixture
async def bank(world: World) -> AsyncIterator[Bank]:
    auth = Authorizer(insecure=True)
    server = grpc.aio.server()
    pb_grpc.add_ChequeDeskServicer_to_server(ChequeDeskServicer(world.core, auth), server)
    dispatch.add_dispatch_services(server, DispatchService(world.engine), auth, world.engine)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield Bank(world, port)
    finally:
        await server.stop(0)


@pytest_asyncio.fixture
async def desk(bank: Bank) -> AsyncIterator[tuple[ConsoleServer, str]]:
    """The branch's back-office teller's console (BO-1), its display following B01."""
    server = ConsoleServer(ConsoleSession(bank.settings("teller:BO-1")))
    url = await server.start()
    try:
        await until(server.session, lambda f: "cheques" in f)
        yield server, url
    finally:
        await server.stop()


async def get(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as response:
        return response.status, dict(response.headers), await response.read()


def refusal(body: bytes) -> tuple[str, str, str]:
    data: dict[str, Any] = json.loads(body)
    assert data["message"]
    return data["status"], data.get("reason", ""), data.get("field", "")


def shown(session: ConsoleSession, pid: str) -> Any:
    return until(
        session,
        lambda f: next(
            (p for p in f["cheques"]["display"]["purchases"] if p["purchase_id"] == pid), None
        ),
    )


async def test_the_state_names_the_photo_and_the_route_serves_it_audited(
    bank: Bank, desk: tuple[ConsoleServer, str], caplog: pytest.LogCaptureFixture
) -> None:
    server, url = desk
    session = server.session
    pid = await asyncio.to_thread(bank.world.identified)
    purchase = await shown(session, pid)
    assert purchase["photo"] == f"/display/photos/{pid}"
    # Not the photo, in no form: every push would carry it again.
    encoded = session.encode(session.state_frame())
    assert "data:" not in encoded and "base64" not in encoded
    assert bank.audited() == []  # named in the state: not yet handed out
    caplog.clear()
    with caplog.at_level(logging.INFO):
        status, headers, body = await get(url + purchase["photo"].lstrip("/"))
        assert (status, body) == (200, PHOTO)
        assert headers["Content-Type"] == "image/jpeg"  # sniffed from the bytes
        assert headers["Cache-Control"] == "no-store"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Cross-Origin-Resource-Policy"] == "same-origin"
        # The console's own page asking: served (and audited) again.
        again, _, _ = await get(url + f"display/photos/{pid}", **{"Sec-Fetch-Site": "same-origin"})
        assert again == 200
    assert bank.audited() == [("teller:BO-1", "display_photo", pid)] * 2
    viewed = [
        getattr(r, "branchline_fields", {})
        for r in caplog.records
        if r.getMessage() == "display_photo_viewed"
    ]
    assert [(v["who"], v["purchase_id"]) for v in viewed] == [("teller:BO-1", pid)] * 2


async def test_a_sale_not_on_the_display_or_without_a_photo_and_bad_ids_are_refused_by_name(
    bank: Bank, desk: tuple[ConsoleServer, str]
) -> None:
    server, url = desk
    world = bank.world
    on_show = await asyncio.to_thread(world.identified)
    await shown(server.session, on_show)
    # The ID card read, the face not yet: not on the display.
    waiting = new_pid()
    assert not (await asyncio.to_thread(world.start_card, pid=waiting)).code
    assert not (await asyncio.to_thread(world.id_card, waiting)).code
    # A card whose photo is only the raw compressed one: shown without a photo.
    raw = new_pid()
    for reply in (
        await asyncio.to_thread(world.start_card, pid=raw),
        await asyncio.to_thread(world.id_card, raw, photo_format="wlt"),
        await asyncio.to_thread(world.face, raw),
    ):
        assert not reply.code, reply
    assert (await shown(server.session, raw))["photo"] == ""
    base = url + "display/photos/"
    cases = {
        base + new_pid(): (404, ("NOT_FOUND", "not_on_display", "purchase_id")),
        base + waiting: (404, ("NOT_FOUND", "not_on_display", "purchase_id")),
        base + raw: (404, ("NOT_FOUND", "no_photo", "purchase_id")),
        base + "x" * 65: (400, ("INVALID_ARGUMENT", "invalid_argument", "purchase_id")),
        base + "x" * 5000: (400, ("INVALID_ARGUMENT", "invalid_argument", "purchase_id")),
        base + "a%00b": (400, ("INVALID_ARGUMENT", "invalid_argument", "purchase_id")),
        # A right-to-left override before a real id: not text an id is made of.
        base + "%E2%80%AE" + on_show: (
            400,
            ("INVALID_ARGUMENT", "invalid_argument", "purchase_id"),
        ),
    }
    for address, (status, expected) in cases.items():
        got, _, body = await get(address)
        assert (got, refusal(body)) == (status, expected), address[:120]
    # Another site's page pointing an <img> at it: refused though the sale is on show.
    for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "http://evil.example"}):
        got, _, body = await get(base + on_show, **headers)
        assert (got, refusal(body)) == (403, ("PERMISSION_DENIED", "same_origin", ""))
    assert bank.audited() == []  # nothing handed out


async def test_refused_before_sign_in_and_without_the_cheques_screen(bank: Bank) -> None:
    pid = await asyncio.to_thread(bank.world.identified)
    # A console whose server is not there: not signed in, so no photo.
    lost = ConsoleServer(ConsoleSession(bank.settings("teller:BO-1", port=9)))
    lost_url = await lost.start()
    # A teller of the branch without the back-office skill: no cheques screen.
    plain = ConsoleServer(ConsoleSession(bank.settings("teller:T-9")))
    plain_url = await plain.start()
    try:
        status, _, body = await get(lost_url + f"display/photos/{pid}")
        assert (status, refusal(body)) == (403, ("PERMISSION_DENIED", "not_signed_in", ""))
        await until(plain.session, lambda f: "tasks" in f)
        status, _, body = await get(plain_url + f"display/photos/{pid}")
        assert (status, refusal(body)) == (403, ("PERMISSION_DENIED", "role_view", ""))
        # The display page's policy: images from the console's routes, no data: URLs.
        _, headers, _ = await get(plain_url + "display")
        policy = headers["Content-Security-Policy"]
        assert "img-src 'self';" in policy and "data:" not in policy
    finally:
        await lost.stop()
        await plain.stop()
    assert bank.audited() == []
