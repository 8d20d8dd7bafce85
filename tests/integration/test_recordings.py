"""Issue 14 recordings through real processes: the server (mTLS), the agent and its kiosk
page's HTTP routes.

WebM chunks (made with PyAV the way MediaRecorder makes them) are posted to the agent, the
recording is closed with its transaction, its SHA-256 lands in the e-journal
(``branchline-diag journal verify`` passes), the agent uploads it as the terminal and the
server stores it remuxed: PyAV decodes about the recorded duration and seeks. With the server
stopped the next recording waits in the agent's spool and arrives once the server is back,
stored once. An operator's viewing is in the audit.
"""

from __future__ import annotations

import json
import sqlite3
import urllib.request
from pathlib import Path

import grpc
import pytest

from branchline.v1 import recordings_pb2 as pb
from branchline.v1 import recordings_pb2_grpc as pb_grpc
from tests.integration.launch import server_and_agent
from tests.integration.stack import Stack, wait_for
from tests.unit.recording_media import chunks, probe, webm_test_pattern

# Not there yet, or the server is (re)starting or slow under load: ask again.
RETRYABLE = (
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
)
pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def post(
    url: str, data: bytes, content_type: str = "application/octet-stream"
) -> dict[str, object]:
    request = urllib.request.Request(url, data=data, headers={"Content-Type": content_type})
    with urllib.request.urlopen(request, timeout=10) as reply:
        body: dict[str, object] = json.loads(reply.read())
        return body


def record(stack: Stack, recording_id: str, media: bytes, txn_ref: str) -> str:
    base = (stack.state_dir / "kiosk.url").read_text().strip().rstrip("/")
    for index, piece in enumerate(chunks(media, 4096)):
        post(f"{base}/recordings/{recording_id}/chunks/{index}", piece)
    close = {"txn_ref": txn_ref, "kind": "call", "source": "kiosk", "media_type": "video/webm"}
    closed = post(
        f"{base}/recordings/{recording_id}/close", json.dumps(close).encode(), "application/json"
    )
    return str(closed["sha256"])


def stored(stack: Stack, txn_ref: str) -> list[pb.Recording]:
    stub = pb_grpc.RecordingsStub(stack.operator_channel())
    try:
        return list(
            stub.ListRecordings(pb.ListRecordingsRequest(txn_ref=txn_ref), timeout=5).recordings
        )
    except grpc.RpcError as exc:
        if exc.code() in RETRYABLE:  # type: ignore[attr-defined]
            return []
        raise


def fetch(stack: Stack, rec: pb.Recording, out: Path) -> Path:
    stub = pb_grpc.RecordingsStub(stack.operator_channel())
    with out.open("wb") as f:
        for piece in stub.FetchRecording(
            pb.FetchRecordingRequest(sha256=rec.sha256, txn_ref=rec.txn_ref), timeout=30
        ):
            f.write(piece.data)
    return out


def test_recordings_reach_the_store_seekable_journaled_and_survive_a_server_outage(
    stack: Stack,
) -> None:
    store = stack.root / "recordings"
    args = ["--recordings-dir", str(store)]
    stack.devices = ()
    stack.required_devices = ()
    stack.agent_extra = '[kiosk]\nlisten = "127.0.0.1:0"\n'
    # No load balancer in front: the server stops without a drain period.
    args = [*args, "--shutdown-drain", "0"]
    server_and_agent(stack, args)
    wait_for(lambda: (stack.state_dir / "kiosk.url").exists(), 30, "the kiosk page")

    media = webm_test_pattern(seconds=3.0)
    sha = record(stack, "call-1-kiosk", media, "CALL-IT-1")
    [rec] = wait_for(lambda: stored(stack, "CALL-IT-1"), 90, "the recording on the server")
    assert rec.sha256 == sha and rec.terminal_id == stack.terminal_id
    duration, frames = probe(str(fetch(stack, rec, stack.root / "got.webm")))
    assert 2.5 <= duration <= 3.5 and frames == 45

    assert stack.diag("journal", "verify").returncode == 0
    shown = json.loads(stack.diag("journal", "show", "--json").stdout)
    text = json.dumps(shown)
    assert sha in text and "CALL-IT-1" in text

    audit = (
        sqlite3.connect(stack.root / "server.db")
        .execute(
            "SELECT actor, action FROM recording_audit WHERE sha256 = ? ORDER BY audit_id", (sha,)
        )
        .fetchall()
    )
    assert audit == [
        (f"terminal {stack.terminal_id}", "stored"),
        ("operator ops", "listed"),
        ("operator ops", "viewed"),
    ]

    # Server down: the next recording waits in the spool, then arrives once, seekable.
    port = stack.server_port
    stack.procs["server"].stop()
    media2 = webm_test_pattern(seconds=4.0)
    sha2 = record(stack, "call-2-kiosk", media2, "CALL-IT-2")
    assert (stack.state_dir / "recordings" / "call-2-kiosk.rec").exists()
    stack.start_server(extra=[*args, "--listen", f"127.0.0.1:{port}"])
    [rec2] = wait_for(lambda: stored(stack, "CALL-IT-2"), 90, "the recording after the outage")
    assert rec2.sha256 == sha2
    wait_for(
        lambda: not (stack.state_dir / "recordings" / "call-2-kiosk.rec").exists(),
        30,
        "the agent to drop its uploaded copy",
    )
    copies = sorted(p.name for p in (store / "sha256").rglob("*") if p.is_file())
    assert copies == sorted([sha, sha2])
    assert list((store / "uploads").iterdir()) == []
    duration2, _ = probe(str(fetch(stack, rec2, stack.root / "got2.webm")))
    assert 3.5 <= duration2 <= 4.5
    assert stack.diag("journal", "verify").returncode == 0
