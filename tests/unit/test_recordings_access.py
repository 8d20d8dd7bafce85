"""Who may watch a recording, retention with legal hold, and the spool's and routes' bounds.

Customer viewing goes through the real servicer on a real gRPC server with real customer
sessions (card + PIN at a terminal): the recording of one customer's transaction is refused
for another card's session."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import grpc
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from branchline.common.errors import DomainError
from branchline.common.grpc_errors import error_details
from branchline.common.recordings.routes import register_recording_routes
from branchline.common.recordings.spool import MAX_CHUNK, RecordingSpool
from branchline.common.recordings.upload import upload_one
from branchline.common.recordings.viewing import register_viewing_routes
from branchline.server.auth import Authorizer
from branchline.server.ledger.sessions import CustomerSessions
from branchline.server.recordings.service import RecordingService, UploadMeta, Viewer
from branchline.server.recordings.servicer import RecordingsServicer
from branchline.server.recordings.store import ContentStore
from branchline.server.storage import open_database
from branchline.v1 import recordings_pb2 as pb
from branchline.v1 import recordings_pb2_grpc as pb_grpc
from tests.unit.recording_media import chunks, webm_test_pattern
from tests.unit.sqlite_template import migrated_sqlite

pytestmark = pytest.mark.timeout(90)

TERMINAL = (("branchline-principal", "terminal:T1"),)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def service(tmp_path: Path, clock: Clock | None = None) -> RecordingService:
    engine = open_database(migrated_sqlite(tmp_path / "server.db"))
    return RecordingService(
        engine, ContentStore(tmp_path / "store"), timedelta(days=90), clock or Clock()
    )


def store_one(svc: RecordingService, media: bytes, txn_ref: str, customer: str = "") -> str:
    digest = hashlib.sha256(media).hexdigest()
    meta = UploadMeta(
        digest, len(media), txn_ref, "call", f"r-{txn_ref}", "kiosk", "video/webm", None, None
    )
    begun = svc.begin(meta, "T1", customer)
    for offset in range(0, len(media), 4096):
        svc.append(begun.upload_id, offset, media[offset : offset + 4096])
    assert svc.commit(begun.upload_id).stored_now
    return digest


def test_retention_deletes_old_recordings_with_an_audit_entry_and_a_hold_keeps_one(
    tmp_path: Path,
) -> None:
    clock = Clock()
    svc = service(tmp_path, clock)
    old = store_one(svc, webm_test_pattern(1.0), "TX-OLD")
    held = store_one(svc, webm_test_pattern(1.2), "TX-HELD")
    clock.now += timedelta(days=60)
    young = store_one(svc, webm_test_pattern(1.4), "TX-YOUNG")
    with pytest.raises(DomainError) as no_reason:
        svc.set_hold("lobby l-1", held, True, "  ")
    assert getattr(no_reason.value, "field", "") == "reason"
    svc.set_hold("lobby l-1", held, True, "dispute 42")

    clock.now += timedelta(days=31)  # the first two are 91 days old, the third 31
    deleted, kept = svc.sweep()
    assert deleted == [old] and kept == 1
    assert not svc.store.has(old) and svc.store.has(held) and svc.store.has(young)
    audit = [(a.actor, a.action, a.txn_ref) for a in svc.audit_of(old)]
    assert audit[-1] == ("retention", "deleted", "TX-OLD")
    assert "retention 90 days" in svc.audit_of(old)[-1].detail
    # The held one: retention says it keeps it, and why (once, not at every sweep).
    held_audit = svc.audit_of(held)
    assert [(a.actor, a.action) for a in held_audit] == [
        ("terminal T1", "stored"),
        ("lobby l-1", "hold"),
        ("retention", "kept"),
    ]
    assert held_audit[1].detail == "dispute 42"
    assert "on legal hold: dispute 42" in held_audit[2].detail
    assert svc.sweep() == ([], 1)
    assert [a.action for a in svc.audit_of(held)] == ["stored", "hold", "kept"]
    with pytest.raises(DomainError) as gone:
        svc.list_for(Viewer("teller t-1"), "TX-OLD")
    assert type(gone.value).__name__ == "NotFound"

    # Lifting the hold needs a reason too; then it goes at the next sweep.
    with pytest.raises(DomainError) as no_release_reason:
        svc.set_hold("lobby l-1", held, False, "")
    assert getattr(no_release_reason.value, "field", "") == "reason"
    svc.set_hold("lobby l-1", held, False, "dispute 42 settled")
    assert svc.sweep() == ([held], 0)
    actions = [(a.action, a.detail) for a in svc.audit_of(held)][-2:]
    assert actions[0] == ("release", "dispute 42 settled")
    assert actions[1][0] == "deleted"


def test_a_customer_sees_only_their_own_recordings(tmp_path: Path) -> None:
    svc = service(tmp_path)
    mine = store_one(svc, webm_test_pattern(1.0), "TX-C1", customer="C-1")
    rows = svc.list_for(Viewer("terminal T1 customer C-1", "C-1"), "TX-C1")
    assert [r.sha256 for r in rows] == [mine]
    with pytest.raises(DomainError) as other:
        svc.open_for(Viewer("terminal T1 customer C-2", "C-2"), mine, "TX-C1")
    assert getattr(other.value, "rule", "") == "own_recordings_only"
    # The wrong transaction for a known hash is not found (no probing by hash).
    with pytest.raises(DomainError) as wrong:
        svc.open_for(Viewer("teller t-1"), mine, "TX-OTHER")
    assert type(wrong.value).__name__ == "NotFound"
    actions = [(a.actor, a.action) for a in svc.audit_of(mine)]
    assert ("terminal T1 customer C-1", "listed") in actions
    assert all(actor != "terminal T1 customer C-2" for actor, _ in actions)


# long: one scenario, the owner's viewing then every refused session
@pytest.mark.asyncio
async def test_customer_viewing_over_grpc_is_refused_for_another_card(tmp_path: Path) -> None:
    svc = service(tmp_path)
    sessions = CustomerSessions(b"k" * 32)
    now = datetime.now(UTC)
    token_c1 = sessions.issue("T1", "card-1", "C-1", now)
    token_c2 = sessions.issue("T1", "card-2", "C-2", now)
    server = grpc.aio.server()
    pb_grpc.add_RecordingsServicer_to_server(
        RecordingsServicer(svc, Authorizer(insecure=True), sessions), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    spool = RecordingSpool(tmp_path / "agent")
    try:
        for index, piece in enumerate(chunks(webm_test_pattern(1.0), 4096)):
            spool.put_chunk("call-rec", index, piece)
        rec = spool.close("call-rec", "CALL-9", "call", session_token=token_c1)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.RecordingsStub(channel)
            assert await upload_one(stub, rec, TERMINAL) is not None
            held = await stub.SetLegalHold(
                pb.LegalHoldRequest(sha256=rec.sha256, hold=True, reason="complaint 7"),
                metadata=(("branchline-principal", "lobby:L-1"),),
            )
            assert held.recording.legal_hold and held.recording.hold_reason == "complaint 7"
            listed = await stub.ListRecordings(
                pb.ListRecordingsRequest(txn_ref="CALL-9", session_token=token_c1),
                metadata=TERMINAL,
            )
            assert [r.sha256 for r in listed.recordings] == [rec.sha256]
            # The customer sees that it is held, not the staff's reason.
            assert listed.recordings[0].legal_hold and listed.recordings[0].hold_reason == ""
            pieces = [
                p
                async for p in stub.FetchRecording(
                    pb.FetchRecordingRequest(
                        sha256=rec.sha256, txn_ref="CALL-9", session_token=token_c1
                    ),
                    metadata=TERMINAL,
                )
            ]
            assert pieces[0].recording.txn_ref == "CALL-9"
            assert b"".join(p.data for p in pieces) == svc.store.path_of(rec.sha256).read_bytes()
            for token, code, field in (
                (token_c2, grpc.StatusCode.PERMISSION_DENIED, "txn_ref"),
                ("", grpc.StatusCode.PERMISSION_DENIED, "session_token"),
                ("forged.token", grpc.StatusCode.PERMISSION_DENIED, "session_token"),
            ):
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    async for _ in stub.FetchRecording(
                        pb.FetchRecordingRequest(
                            sha256=rec.sha256, txn_ref="CALL-9", session_token=token
                        ),
                        metadata=TERMINAL,
                    ):
                        pass
                assert refused.value.code() is code
                assert error_details(refused.value).field == field
            # A session of another terminal does not open it here either.
            other = sessions.issue("T2", "card-1", "C-1", now)
            with pytest.raises(grpc.aio.AioRpcError) as elsewhere:
                await stub.ListRecordings(
                    pb.ListRecordingsRequest(txn_ref="CALL-9", session_token=other),
                    metadata=TERMINAL,
                )
            assert error_details(elsewhere.value).reason == "session_other_terminal"
        viewers = [(a.actor, a.action) for a in svc.audit_of(rec.sha256)]
        assert viewers == [
            ("terminal T1", "stored"),
            ("lobby L-1", "hold"),
            ("terminal T1 customer C-1", "listed"),
            ("terminal T1 customer C-1", "viewed"),
        ]
    finally:
        spool.close_db()
        await server.stop(None)


def test_the_spool_bounds_and_names_what_was_wrong(tmp_path: Path) -> None:
    spool = RecordingSpool(tmp_path)
    for rid, index, data, field in (
        ("../etc", 0, b"x", "recording_id"),
        ("r" * 65, 0, b"x", "recording_id"),
        ("ok", -1, b"x", "index"),
        ("ok", 0, b"", "chunk"),
        ("ok", 0, b"x" * (MAX_CHUNK + 1), "chunk"),
    ):
        with pytest.raises(DomainError) as bad:
            spool.put_chunk(rid, index, data)
        assert getattr(bad.value, "field", "") == field, (rid, index)
    # Declared, no chunk ever came (its page went away): closing it says so and drops it.
    spool.declare("none", "TX", "call")
    with pytest.raises(DomainError) as empty:
        spool.close("none", "TX", "call")
    assert getattr(empty.value, "reason", "") == "recording_empty"
    with pytest.raises(DomainError) as gone:
        spool.close("none", "TX", "call")
    assert type(gone.value).__name__ == "NotFound"
    spool.put_chunk("ok", 0, b"a")
    spool.put_chunk("ok", 2, b"c")
    with pytest.raises(DomainError) as other_bytes:
        spool.put_chunk("ok", 0, b"b")
    assert type(other_bytes.value).__name__ == "AlreadyExists"
    with pytest.raises(DomainError) as gap:
        spool.close("ok", "TX", "tube")
    assert getattr(gap.value, "reason", "") == "chunks_missing"
    assert "[1]" in str(gap.value)
    with pytest.raises(DomainError) as kind:
        spool.close("ok", "TX", "movie")
    assert getattr(kind.value, "field", "") == "kind"
    spool.put_chunk("ok", 1, b"b")
    closed = spool.close("ok", "TX", "tube")
    assert closed.sha256 == hashlib.sha256(b"abc").hexdigest()
    assert closed.path.read_bytes() == b"abc"
    assert spool.close("ok", "TX", "tube") == closed  # closing again answers the same
    with pytest.raises(DomainError) as late:
        spool.put_chunk("ok", 3, b"d")
    assert getattr(late.value, "reason", "") == "recording_closed"
    # Durable: a new spool on the same folder (an agent restart) still has it pending.
    spool.close_db()
    again = RecordingSpool(tmp_path)
    assert [r.recording_id for r in again.pending()] == ["ok"]
    again.close_db()


@pytest.mark.asyncio
async def test_the_routes_refuse_with_json_naming_the_field(tmp_path: Path) -> None:
    spool = RecordingSpool(tmp_path)
    app = web.Application()
    register_recording_routes(app, spool)
    page = TestServer(app, host="127.0.0.1")
    await page.start_server()
    base = str(page.make_url("")).rstrip("/")
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{base}/recordings/r1/chunks/x", data=b"a") as r:
                assert r.status == 400 and (await r.json())["field"] == "index"
            big = b"x" * (MAX_CHUNK + 10)
            async with http.post(f"{base}/recordings/r1/chunks/0", data=big) as r:
                assert r.status == 400 and (await r.json())["field"] == "chunk"
            async with http.post(f"{base}/recordings/bad.id/chunks/0", data=b"a") as r:
                assert r.status == 400 and (await r.json())["field"] == "recording_id"
            async with http.post(
                f"{base}/recordings/r1/chunks/0", data=b"a", headers={"Origin": "http://evil"}
            ) as r:
                assert r.status == 403 and (await r.json())["reason"] == "same_origin"
            async with http.post(
                f"{base}/recordings/nope/close", json={"txn_ref": "T", "kind": "tube"}
            ) as r:
                assert r.status == 404 and (await r.json())["field"] == "recording_id"
            async with http.post(f"{base}/recordings/r1/chunks/0", data=b"a") as r:
                assert r.status == 201
            async with http.post(f"{base}/recordings/r1/close", data=b"[1]") as r:
                assert r.status == 400 and (await r.json())["field"] == "body"
            async with http.post(f"{base}/recordings/r1/close", json={"kind": "tube"}) as r:
                assert r.status == 400 and (await r.json())["field"] == "txn_ref"
            async with http.post(f"{base}/recordings/r1/chunks/0", data=b"b") as r:
                assert r.status == 409
    finally:
        await page.close()
        spool.close_db()


@pytest.mark.asyncio
async def test_my_recordings_at_the_terminal_open_for_their_customer_only(tmp_path: Path) -> None:
    """The kiosk's "my recordings" routes: the agent asks the server with the signed-in
    customer's session (never the page); another card's session is refused; Range seeks."""
    svc = service(tmp_path)
    sessions = CustomerSessions(b"k" * 32)
    now = datetime.now(UTC)
    tokens = {
        "C-1": sessions.issue("T1", "card-1", "C-1", now),
        "C-2": sessions.issue("T1", "card-2", "C-2", now),
    }
    mine = store_one(svc, webm_test_pattern(1.0), "CALL-M", customer="C-1")
    server = grpc.aio.server()
    pb_grpc.add_RecordingsServicer_to_server(
        RecordingsServicer(svc, Authorizer(insecure=True), sessions), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    signed_in = {"who": ""}
    app = web.Application()
    register_viewing_routes(
        app,
        lambda: (grpc.aio.insecure_channel(f"127.0.0.1:{port}"), TERMINAL),
        lambda: tokens.get(signed_in["who"], ""),
    )
    page = TestServer(app, host="127.0.0.1")
    await page.start_server()
    base = str(page.make_url("")).rstrip("/")
    stored = svc.store.path_of(mine).read_bytes()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/recordings/mine/CALL-M") as r:
                assert r.status == 403 and (await r.json())["reason"] == "sign_in_required"
            signed_in["who"] = "C-1"
            async with http.get(f"{base}/recordings/mine/CALL-M") as r:
                listed = await r.json()
                assert r.status == 200 and [x["sha256"] for x in listed["recordings"]] == [mine]
            async with http.get(f"{base}/recordings/mine/CALL-M/{mine}") as r:
                assert r.status == 200 and r.headers["Content-Type"] == "video/webm"
                assert await r.read() == stored
            headers = {"Range": "bytes=100-"}
            async with http.get(f"{base}/recordings/mine/CALL-M/{mine}", headers=headers) as r:
                assert r.status == 206 and await r.read() == stored[100:]
                assert r.headers["Content-Range"] == f"bytes 100-{len(stored) - 1}/{len(stored)}"
            signed_in["who"] = "C-2"
            async with http.get(f"{base}/recordings/mine/CALL-M/{mine}") as r:
                body = await r.json()
                assert r.status == 403 and body["reason"] == "own_recordings_only"
                assert body["field"] == "txn_ref"
            async with http.get(f"{base}/recordings/mine/CALL-M") as r:
                assert r.status == 403
        actors = {(a.actor, a.action) for a in svc.audit_of(mine)}
        assert ("terminal T1 customer C-1", "viewed") in actors
        assert not any("C-2" in actor for actor, _ in actors)
    finally:
        await page.close()
        await server.stop(None)


def test_a_retention_out_of_bounds_stops_the_server_naming_the_option(tmp_path: Path) -> None:
    import asyncio

    from branchline.server.app import DispatchServer, StartupError
    from tests.unit.server_support import settings

    server = DispatchServer(
        settings(tmp_path, recordings_dir=tmp_path / "r", recording_retention_days=0.0)
    )
    with pytest.raises(StartupError) as refused:
        asyncio.run(server.run())
    assert "--recording-retention-days" in str(refused.value)
