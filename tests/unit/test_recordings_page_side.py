"""The page side of recordings without a browser: a recording declared up front and left by
its page (a reload, a crash) is closed by the process with what it holds, journaled; the
``open`` route and ``recorder.js`` are served; the kiosk's "my recordings" takes a receipt's
reference; the console records the back-office camera from receive until the count."""

from __future__ import annotations

import hashlib
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from branchline.agent.journal.store import Store
from branchline.agent.kiosk.flows.recordings import txn_ref_of
from branchline.common.errors import DomainError, InvalidArgument
from branchline.common.recordings.routes import (
    register_recorder_script,
    register_recording_routes,
)
from branchline.common.recordings.spool import RecordingSpool
from branchline.common.recordings.upload import Uploader
from branchline.server.console import recordings as console_recordings
from branchline.server.console.session import ConsoleSession, views_for
from tests.unit.console_support import Stack, stack, until

__all__ = ["stack"]

pytestmark = pytest.mark.timeout(90)


def test_an_abandoned_recording_is_closed_with_what_its_page_sent(tmp_path: Path) -> None:
    store = Store(tmp_path / "agent", "T1")
    spool = RecordingSpool(tmp_path / "agent", store.ejournal)
    spool.declare("gone", "TX-1", "tube", "kiosk", "video/webm;codecs=vp8")
    for index, data in ((0, b"ab"), (1, b"cd"), (3, b"gh")):  # 2 never arrived
        spool.put_chunk("gone", index, data)
    spool.declare("empty", "TX-1", "tube", "kiosk")
    spool.put_chunk("unnamed", 0, b"zz")  # never declared: left for its page to close
    spool.declare("live", "TX-2", "call", "teller")
    spool.put_chunk("live", 0, b"x")

    assert spool.close_abandoned(3600) == []  # nothing is idle that long
    closed = spool.close_abandoned(0)
    assert {c.recording_id for c in closed} == {"gone", "live"}
    gone = next(c for c in closed if c.recording_id == "gone")
    # The prefix up to the gap: a WebM cut anywhere plays up to the cut.
    assert gone.path.read_bytes() == b"abcd"
    assert gone.sha256 == hashlib.sha256(b"abcd").hexdigest()
    assert (gone.txn_ref, gone.kind, gone.source, gone.media_type) == (
        "TX-1",
        "tube",
        "kiosk",
        "video/webm",
    )
    [entry] = store.ejournal.find("recording", "TX-1")
    assert entry.fields()["sha256"] == gone.sha256
    assert store.ejournal.verify().ok
    assert spool.state_of("empty") == ""  # declared, nothing recorded: dropped
    assert spool.state_of("unnamed") == "open"
    assert not (spool.root / "gone").exists() and not (spool.root / "empty").exists()
    assert {r.recording_id for r in spool.pending()} == {"gone", "live"}
    spool.close_db()


def test_declaring_names_what_is_wrong(tmp_path: Path) -> None:
    spool = RecordingSpool(tmp_path)
    for args, field in (
        (("r1", "TX", "movie"), "kind"),
        (("r1", "TX", "tube", "lobby"), "source"),
        (("r1", "", "tube"), "txn_ref"),
        (("r/1", "TX", "tube"), "recording_id"),
    ):
        with pytest.raises(DomainError) as bad:
            spool.declare(*args)
        assert getattr(bad.value, "field", "") == field, args
    spool.put_chunk("r2", 0, b"a")
    spool.close("r2", "TX", "tube")
    with pytest.raises(DomainError) as late:
        spool.declare("r2", "TX", "tube")
    assert getattr(late.value, "reason", "") == "recording_closed"
    spool.close_db()


@pytest.mark.asyncio
async def test_the_uploader_closes_abandoned_recordings_on_its_rounds(tmp_path: Path) -> None:
    spool = RecordingSpool(tmp_path)
    spool.declare("r1", "TX", "tube")
    spool.put_chunk("r1", 0, b"abc")
    uploader = Uploader(spool, lambda: None, abandoned_after=0)  # type: ignore[arg-type, return-value]
    assert await uploader.close_abandoned() == 1
    assert spool.state_of("r1") == "closed"
    spool.close_db()


@pytest.mark.asyncio
async def test_the_open_route_and_the_recorder_script(tmp_path: Path) -> None:
    spool = RecordingSpool(tmp_path)
    app = web.Application()
    register_recorder_script(app)
    register_recording_routes(app, spool, session_token=lambda: "tok-123456")
    page = TestServer(app, host="127.0.0.1")
    await page.start_server()
    base = str(page.make_url("")).rstrip("/")
    meta = {"txn_ref": "TX-9", "kind": "tube", "source": "backoffice", "media_type": "video/webm"}
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/recordings/recorder.js") as r:
                assert r.status == 200 and "javascript" in r.headers["Content-Type"]
                assert "MediaRecorder" in await r.text()
            async with http.post(f"{base}/recordings/r1/open", json={**meta, "kind": "x"}) as r:
                assert r.status == 400 and (await r.json())["field"] == "kind"
            async with http.post(f"{base}/recordings/r1/open", json=meta) as r:
                assert r.status == 201
            async with http.post(f"{base}/recordings/r1/chunks/0", data=b"abc") as r:
                assert r.status == 201
            async with http.post(f"{base}/recordings/r1/close", json=meta) as r:
                assert r.status == 200
                assert (await r.json())["sha256"] == hashlib.sha256(b"abc").hexdigest()
    finally:
        await page.close()
    [closed] = spool.pending()
    assert closed.source == "backoffice" and closed.session_token == "tok-123456"
    spool.close_db()


def test_a_receipt_s_reference_names_the_recordings_transaction() -> None:
    assert txn_ref_of(" BLTX:T-0001:787db3d4-4764 ") == "787db3d4-4764"
    assert txn_ref_of("CALL-17") == "CALL-17"
    assert console_recordings.txn_ref_of("BLTX:K-1:CON-1") == "CON-1"
    assert txn_ref_of("BLCQ:K-1:pur-7") == "pur-7"  # a cheque purchase's reference
    for bad in ("", "BLTX:T-0001", "a b", "BLTX:T:x:y"):
        with pytest.raises(InvalidArgument) as refused:
            txn_ref_of(bad)
        assert refused.value.field == "reference", bad


def test_every_staff_role_has_the_recordings_view() -> None:
    for role, skills in (
        ("operator", []),
        ("lobby", []),
        ("teller", []),
        ("teller", ["back_office"]),
    ):
        assert "recordings" in views_for(role, skills)


@pytest.mark.asyncio
async def test_the_back_office_camera_is_recorded_from_receive_until_the_count(
    stack: Stack, tmp_path: Path
) -> None:
    from dataclasses import replace

    clerk = ConsoleSession(replace(stack.settings("teller:BO-1"), state_dir=tmp_path / "bo"))
    await clerk.start()
    try:
        stack.terminal("REC-1")
        await until(
            clerk,
            lambda f: any(
                c["txn_id"] == "REC-1" for c in f.get("backoffice", {}).get("carriers", [])
            ),
        )
        assert clerk.state_frame()["backoffice"]["record"] is None  # not in anyone's hands yet
        assert await clerk.handle("backoffice.receive", {"txn_id": "REC-1"}) is None
        record = clerk.state_frame()["backoffice"]["record"]
        assert record == {"txn_ref": "REC-1", "kind": "tube", "source": "backoffice"}
        count = {"txn_id": "REC-1", "kind": "cash", "amount": "500", "denominations": {"100": "5"}}
        assert await clerk.handle("backoffice.count", count) is None
        assert clerk.state_frame()["backoffice"]["record"] is None
        assert (tmp_path / "bo" / "recordings" / "spool.db").exists()
        frame = clerk.state_frame()
        assert frame["recordings"] == {
            "query": "",
            "txn_ref": "",
            "searched": False,
            "results": [],
            "playing": "",
            "play_url": "",
            "can_hold": False,  # the back office does not hold recordings
        }
        refused = await clerk.handle("recordings.play", {"sha256": "0" * 64})
        assert refused is not None and refused["field"] == "sha256"
    finally:
        await clerk.stop()
