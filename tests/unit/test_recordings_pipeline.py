"""Recordings end to end in one process, over real HTTP and real gRPC: chunks posted to the
agent's route, closed (SHA-256 into the e-journal), uploaded to a real server, stored once,
remuxed so PyAV knows the duration and seeks, and viewed by staff with an audit entry; an
upload cut by a server restart resumes from the stored offset."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from branchline.agent.journal.store import Store
from branchline.common.grpc_errors import error_details
from branchline.common.recordings.routes import register_recording_routes
from branchline.common.recordings.spool import RecordingSpool
from branchline.common.recordings.upload import Uploader, upload_one
from branchline.server.app import DispatchServer
from branchline.v1 import recordings_pb2 as pb
from branchline.v1 import recordings_pb2_grpc as pb_grpc
from tests.unit.recording_media import chunks, probe, webm_test_pattern
from tests.unit.server_support import run_until_ready, settings

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(90)]

TERMINAL = (("branchline-principal", "terminal:T1"),)
TELLER = (("branchline-principal", "teller:t-1"),)


async def start_server(tmp_path: Path) -> tuple[DispatchServer, asyncio.Task[int]]:
    server = DispatchServer(settings(tmp_path, recordings_dir=tmp_path / "store"))
    return server, await run_until_ready(server)


async def stop_server(server: DispatchServer, running: asyncio.Task[int]) -> None:
    server.request_stop()
    assert await running == 0


async def post_recording(
    url: str, recording_id: str, media: bytes, txn_ref: str, kind: str = "call"
) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        for index, piece in enumerate(chunks(media, 2048)):
            async with http.post(
                f"{url}/recordings/{recording_id}/chunks/{index}", data=piece
            ) as r:
                assert r.status == 201, await r.text()
        # A chunk sent twice (the page retried) is kept once.
        async with http.post(f"{url}/recordings/{recording_id}/chunks/0", data=media[:2048]) as r:
            assert r.status == 200 and (await r.json())["kept"] is False
        close = {"txn_ref": txn_ref, "kind": kind, "source": "kiosk", "media_type": "video/webm"}
        async with http.post(f"{url}/recordings/{recording_id}/close", json=close) as r:
            assert r.status == 200, await r.text()
            body: dict[str, Any] = await r.json()
            return body


def stored_files(root: Path) -> list[Path]:
    return [p for p in (root / "sha256").rglob("*") if p.is_file()]


# long: one end-to-end scenario, chunks to a viewed recording, step by step
async def test_chunks_to_a_seekable_stored_recording_journaled_and_viewed(tmp_path: Path) -> None:
    media = webm_test_pattern(seconds=3.0)
    server, running = await start_server(tmp_path)
    store = Store(tmp_path / "agent", "T1")
    spool = RecordingSpool(tmp_path / "agent", store.ejournal)
    app = web.Application()
    register_recording_routes(app, spool)
    page = TestServer(app, host="127.0.0.1")
    await page.start_server()
    try:
        closed = await post_recording(str(page.make_url("")).rstrip("/"), "rec-1", media, "CALL-1")
        import hashlib

        assert closed["sha256"] == hashlib.sha256(media).hexdigest()
        assert closed["size"] == len(media)
        entries = store.ejournal.find("recording", "CALL-1")
        assert [e.fields()["sha256"] for e in entries] == [closed["sha256"]]
        assert store.ejournal.verify().ok

        target = f"127.0.0.1:{server.port}"
        uploader = Uploader(spool, lambda: grpc.aio.insecure_channel(target), TERMINAL)
        async with grpc.aio.insecure_channel(target) as channel:
            stub = pb_grpc.RecordingsStub(channel)
            assert await uploader.drain(stub) == 1
            assert spool.state_of("rec-1") == "uploaded"
            assert not spool.file_of("rec-1").exists()
            assert await uploader.drain(stub) == 0

            files = stored_files(tmp_path / "store")
            assert [f.name for f in files] == [closed["sha256"]]
            assert files[0].parent.name == closed["sha256"][2:4]
            duration, frames = probe(str(files[0]))
            assert 2.5 <= duration <= 3.5 and frames == 45

            # The same content again is answered as stored: no second copy.
            again = await stub.BeginUpload(
                pb.BeginUploadRequest(
                    sha256=closed["sha256"],
                    size=len(media),
                    txn_ref="CALL-1",
                    kind="call",
                    recording_id="rec-1",
                    source="kiosk",
                    media_type="video/webm",
                ),
                metadata=TERMINAL,
            )
            assert again.already_stored

            listed = await stub.ListRecordings(
                pb.ListRecordingsRequest(txn_ref="CALL-1"), metadata=TELLER
            )
            assert [r.sha256 for r in listed.recordings] == [closed["sha256"]]
            assert 2.5 <= listed.recordings[0].duration_seconds <= 3.5
            got = bytearray()
            async for piece in stub.FetchRecording(
                pb.FetchRecordingRequest(sha256=closed["sha256"], txn_ref="CALL-1"),
                metadata=TELLER,
            ):
                got.extend(piece.data)
            assert bytes(got) == files[0].read_bytes()
            service = server.hub.optional("recordings")  # type: ignore[union-attr]
            audit = [(a.actor, a.action) for a in service.audit_of(closed["sha256"])]
            assert audit == [
                ("terminal T1", "stored"),
                ("teller t-1", "listed"),
                ("teller t-1", "viewed"),
            ]
    finally:
        await page.close()
        await stop_server(server, running)
        spool.close_db()
        store.close()


# long: one scenario across a server restart, step by step
async def test_an_upload_cut_by_a_server_restart_resumes_with_one_stored_copy(
    tmp_path: Path,
) -> None:
    media = webm_test_pattern(seconds=2.0)
    spool = RecordingSpool(tmp_path / "agent")
    for index, piece in enumerate(chunks(media, 1024)):
        spool.put_chunk("rec-2", index, piece)
    rec = spool.close("rec-2", "TX-2", "tube")
    half = rec.size // 2

    server, running = await start_server(tmp_path)
    target = f"127.0.0.1:{server.port}"
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.RecordingsStub(channel)
        begun = await stub.BeginUpload(
            pb.BeginUploadRequest(
                sha256=rec.sha256,
                size=rec.size,
                txn_ref="TX-2",
                kind="tube",
                recording_id="rec-2",
                source="kiosk",
                media_type="video/webm",
            ),
            metadata=TERMINAL,
        )
        assert begun.offset == 0 and not begun.already_stored

        async def first_half():  # type: ignore[no-untyped-def]
            data = rec.path.read_bytes()[:half]
            yield pb.UploadChunkRequest(upload_id=begun.upload_id, offset=0, data=data)

        assert (await stub.UploadChunk(first_half(), metadata=TERMINAL)).offset == half
    await stop_server(server, running)

    # The uploader meets a stopped server, then the restarted one.
    uploader = Uploader(spool, lambda: grpc.aio.insecure_channel(target), TERMINAL)
    async with grpc.aio.insecure_channel(target) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as down:
            await uploader.drain(pb_grpc.RecordingsStub(channel))
        assert down.value.code() is grpc.StatusCode.UNAVAILABLE
    assert spool.state_of("rec-2") == "closed"

    server, running = await start_server(tmp_path)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = pb_grpc.RecordingsStub(channel)
            resumed = await stub.BeginUpload(
                pb.BeginUploadRequest(
                    sha256=rec.sha256,
                    size=rec.size,
                    txn_ref="TX-2",
                    kind="tube",
                    recording_id="rec-2",
                    source="kiosk",
                    media_type="video/webm",
                ),
                metadata=TERMINAL,
            )
            assert resumed.upload_id == begun.upload_id and resumed.offset == half
            assert await uploader.drain(stub) == 1
        files = stored_files(tmp_path / "store")
        assert [f.name for f in files] == [rec.sha256]
        assert list((tmp_path / "store" / "uploads").iterdir()) == []
        duration, _ = probe(str(files[0]))
        assert 1.5 <= duration <= 2.5
    finally:
        await stop_server(server, running)
        spool.close_db()


async def test_bad_uploads_are_refused_naming_the_field(tmp_path: Path) -> None:
    media = webm_test_pattern(seconds=1.0)
    import hashlib

    server, running = await start_server(tmp_path)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = pb_grpc.RecordingsStub(channel)
            request = pb.BeginUploadRequest(
                sha256="XYZ",
                size=len(media),
                txn_ref="TX-3",
                kind="tube",
                recording_id="r3",
                source="kiosk",
                media_type="video/webm",
            )
            with pytest.raises(grpc.aio.AioRpcError) as bad:
                await stub.BeginUpload(request, metadata=TERMINAL)
            assert bad.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert error_details(bad.value).field == "sha256"
            request.sha256 = hashlib.sha256(b"other bytes").hexdigest()
            request.txn_ref = "T" * 500
            with pytest.raises(grpc.aio.AioRpcError) as long:
                await stub.BeginUpload(request, metadata=TERMINAL)
            assert error_details(long.value).field == "txn_ref"
            assert len(long.value.details() or "") < 200
            request.txn_ref = "TX-3"
            request.kind = "film"
            with pytest.raises(grpc.aio.AioRpcError) as kind:
                await stub.BeginUpload(request, metadata=TERMINAL)
            assert error_details(kind.value).field == "kind"
            # Bytes that do not match the declared hash are never stored.
            request.kind = "tube"
            begun = await stub.BeginUpload(request, metadata=TERMINAL)

            async def body():  # type: ignore[no-untyped-def]
                yield pb.UploadChunkRequest(upload_id=begun.upload_id, offset=0, data=media)

            await stub.UploadChunk(body(), metadata=TERMINAL)
            with pytest.raises(grpc.aio.AioRpcError) as mismatch:
                await stub.CommitUpload(
                    pb.CommitUploadRequest(upload_id=begun.upload_id), metadata=TERMINAL
                )
            details = error_details(mismatch.value)
            assert details.field == "sha256" and details.reason == "hash_mismatch"
            assert stored_files(tmp_path / "store") == []
            # Staff cannot upload as a terminal's tellers' consoles do, but customers
            # cannot upload at all: a lobby manager is refused.
            with pytest.raises(grpc.aio.AioRpcError) as who:
                await stub.BeginUpload(request, metadata=(("branchline-principal", "lobby:l-1"),))
            assert who.value.code() is grpc.StatusCode.PERMISSION_DENIED
    finally:
        await stop_server(server, running)


async def test_upload_one_sends_nothing_for_content_already_stored(tmp_path: Path) -> None:
    media = webm_test_pattern(seconds=1.0)
    spool = RecordingSpool(tmp_path / "agent")
    spool.put_chunk("a", 0, media)
    spool.put_chunk("b", 0, media)
    first, second = spool.close("a", "TX-A", "tube"), spool.close("b", "TX-A", "tube")
    server, running = await start_server(tmp_path)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = pb_grpc.RecordingsStub(channel)
            reply = await upload_one(stub, first, TERMINAL)
            assert reply is not None and reply.stored_now
            assert await upload_one(stub, second, TERMINAL) is None
        assert len(stored_files(tmp_path / "store")) == 1
    finally:
        await stop_server(server, running)
        spool.close_db()


async def test_a_recording_refused_for_good_stays_in_the_spool_and_is_not_retried(
    tmp_path: Path,
) -> None:
    spool = RecordingSpool(tmp_path / "agent")
    spool.put_chunk("bad", 0, webm_test_pattern(seconds=1.0))
    rec = spool.close("bad", "TX-BAD", "tube")
    rec.path.write_bytes(b"X" + rec.path.read_bytes()[1:])  # damaged on disk after closing
    assert repr(rec).count("session_token") == 0
    server, running = await start_server(tmp_path)
    try:
        target = f"127.0.0.1:{server.port}"
        uploader = Uploader(spool, lambda: grpc.aio.insecure_channel(target), TERMINAL)
        async with grpc.aio.insecure_channel(target) as channel:
            stub = pb_grpc.RecordingsStub(channel)
            assert await uploader.drain(stub) == 0
            assert uploader.refused == {"bad"}
            assert await uploader.drain(stub) == 0
        assert spool.state_of("bad") == "closed" and rec.path.exists()
        assert stored_files(tmp_path / "store") == []
    finally:
        await stop_server(server, running)
        spool.close_db()
