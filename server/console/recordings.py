"""Recordings in the console.

- Made here: the page records the back-office camera while this person handles a carrier
  and the teller's side of calls (``recorder.js``); the chunks land in this console's spool
  under ``--state-dir`` and its uploader sends them to the server as this person
  (``common/recordings``: the same spool, routes and resumable upload as the agent's).
- Watched here: the ``recordings`` view searches a transaction's recordings by its receipt
  reference and plays one through ``/recordings/view/...`` (seekable); the server checks the
  role and audits every list and fetch in ``recording_audit``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable
from typing import Any

import grpc
from aiohttp import web

from branchline.common.errors import MAX_TEXT, InvalidArgument, PermissionDenied, check_text
from branchline.common.recordings.routes import register_recorder_script, register_recording_routes
from branchline.common.recordings.spool import RecordingSpool
from branchline.common.recordings.upload import Uploader
from branchline.common.recordings.viewing import register_staff_viewing
from branchline.common.txref import txn_ref_of
from branchline.server.console.client import StaffClient, open_channel
from branchline.server.console.settings import ConsoleSettings
from branchline.v1 import recordings_pb2 as pb
from branchline.v1 import recordings_pb2_grpc as pb_grpc

ACTIONS = ("search", "play", "stop", "clear", "hold", "release")
# Who sets and lifts a legal hold (the server's SetLegalHold checks it again): lobby
# managers and operators, not the back office whose own handling is on the recordings.
HOLDERS = ("lobby", "operator")
SHA256 = re.compile(r"[0-9a-f]{64}")


class ConsoleRecordings:
    """This console's spool and uploader (None state dir: the console keeps none)."""

    def __init__(self, settings: ConsoleSettings) -> None:
        self.settings = settings
        self.spool: RecordingSpool | None = None
        self.uploader: Uploader | None = None
        if settings.state_dir is not None:
            settings.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.spool = RecordingSpool(settings.state_dir)
            _, metadata = open_channel(settings)
            self.uploader = Uploader(self.spool, lambda: open_channel(settings)[0], metadata)
        self._task: asyncio.Task[None] | None = None

    def server_access(self) -> tuple[grpc.aio.Channel, tuple[tuple[str, str], ...]]:
        return open_channel(self.settings)

    def register(self, app: web.Application) -> None:
        register_recorder_script(app)
        register_recording_routes(
            app, self.spool, self.uploader.kick if self.uploader is not None else None
        )
        register_staff_viewing(app, self.server_access)

    def start(self) -> None:
        if self.uploader is not None:
            self._task = asyncio.ensure_future(self.uploader.run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.spool is not None:
            self.spool.close_db()


def recording_view(r: pb.Recording) -> dict[str, Any]:
    return {
        "sha256": r.sha256,
        "txn_ref": r.txn_ref,
        "kind": r.kind,
        "source": r.source,
        "size": r.size,
        "duration": round(r.duration_seconds, 1),
        "terminal_id": r.terminal_id,
        "legal_hold": r.legal_hold,
        "hold_reason": r.hold_reason,
    }


class RecordingsDesk:
    """The ``recordings`` view: search by reference, play one (every viewing audited); lobby
    managers and operators set and lift a legal hold, with a reason (audited)."""

    def __init__(self, client: StaffClient, changed: Callable[[], None], role: str = "") -> None:
        self._client = client
        self._changed = changed
        self.can_hold = role in HOLDERS
        self._stub = pb_grpc.RecordingsStub(client.channel)
        self.query = ""
        self.txn_ref = ""
        self.results: list[pb.Recording] = []
        self.searched = False
        self.playing = ""

    def snapshot(self) -> dict[str, Any]:
        url = f"/recordings/view/{self.txn_ref}/{self.playing}" if self.playing else ""
        return {
            "query": self.query,
            "txn_ref": self.txn_ref,
            "searched": self.searched,
            "results": [recording_view(r) for r in self.results],
            "playing": self.playing,
            "play_url": url,
            "can_hold": self.can_hold,
        }

    async def handle(self, action: str, data: dict[str, Any]) -> None:
        if action == "search":
            reference = str(data.get("reference", ""))
            txn_ref = txn_ref_of(reference)
            try:
                reply = await self._client.call(
                    self._stub.ListRecordings, pb.ListRecordingsRequest(txn_ref=txn_ref)
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.NOT_FOUND:
                    self.query, self.txn_ref, self.searched = reference.strip(), txn_ref, True
                    self.results, self.playing = [], ""
                    self._changed()
                raise
            self.query, self.txn_ref, self.searched = reference.strip(), txn_ref, True
            self.results, self.playing = list(reply.recordings), ""
        elif action == "play":
            self.playing = self._found(data)
        elif action in ("hold", "release"):
            await self._hold(self._found(data), action == "hold", data)
        elif action == "stop":
            self.playing = ""
        elif action == "clear":
            self.query, self.txn_ref, self.results, self.searched, self.playing = (
                "",
                "",
                [],
                False,
                "",
            )
        self._changed()

    def _found(self, data: dict[str, Any]) -> str:
        sha = str(data.get("sha256", ""))
        if not SHA256.fullmatch(sha) or sha not in {r.sha256 for r in self.results}:
            raise InvalidArgument("sha256", "choose one of the recordings found")
        return sha

    async def _hold(self, sha: str, hold: bool, data: dict[str, Any]) -> None:
        if not self.can_hold:
            raise PermissionDenied(
                "a legal hold is set and lifted by a lobby manager or an operator",
                rule="legal_hold_role",
            )
        reason = check_text("reason", str(data.get("reason", "")).strip(), max_len=MAX_TEXT)
        reply = await self._client.call(
            self._stub.SetLegalHold, pb.LegalHoldRequest(sha256=sha, hold=hold, reason=reason)
        )
        self.results = [reply.recording if r.sha256 == sha else r for r in self.results]
