"""The back office's camera on the customer's screen, the console's side: while the clerk
handles a carrier, the console page offers one-way video to the kiosk of that transaction
(docs/flows/tube.md "Back office on the customer's screen"). This relays the signalling:

- page → console ``{"type": "desk_signal", "txn_id", "kind": "offer"|"candidate"|"bye",
  "payload"}`` → ``TubeDesk.SendDeskSignal``; an offer starts following
  ``TubeDesk.WatchDeskSignals`` for that transaction, a bye stops it;
- the terminal's answer and candidates → the pages as ``desk_signal`` frames;
- a page that goes away: a ``bye`` for each transaction it offered video to.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import grpc

from branchline.common.errors import InvalidArgument, check_text
from branchline.server.console.client import StaffClient
from branchline.v1 import tube_pb2 as pb

log = logging.getLogger("branchline.console.desk_media")

Send = Callable[[str], None]
KINDS = ("offer", "candidate", "bye")
MAX_PAYLOAD = 16 * 1024
RETRY_SECONDS = 1.0


class DeskMedia:
    def __init__(self, client: StaffClient, send_frame: Callable[[dict[str, Any]], None]) -> None:
        self._client = client
        self._send_frame = send_frame
        # txn id -> (the page that offered, the relay of the terminal's signals)
        self._relays: dict[str, tuple[Send, asyncio.Task[None]]] = {}

    async def on_frame(self, send: Send, message: dict[str, Any]) -> None:
        txn_id = check_text("txn_id", str(message.get("txn_id", "")), max_len=64)
        kind, payload = message.get("kind"), message.get("payload", "")
        if kind not in KINDS:
            raise InvalidArgument("kind", f"one of {', '.join(KINDS)}")
        if not isinstance(payload, str) or len(payload) > MAX_PAYLOAD:
            raise InvalidArgument("payload", f"at most {MAX_PAYLOAD} characters")
        request = pb.DeskSignalRequest(txn_id=txn_id, kind=str(kind), payload=payload)
        await self._client.call(self._client.tube.SendDeskSignal, request)
        if kind == "offer" and txn_id not in self._relays:
            self._relays[txn_id] = (send, asyncio.ensure_future(self._relay(txn_id)))
        elif kind == "bye":
            await self._stop(txn_id)

    async def _relay(self, txn_id: str) -> None:
        last = 0
        while True:
            request = pb.WatchDeskSignalsRequest(txn_id=txn_id, after_id=last)
            stream = self._client.stream(self._client.tube.WatchDeskSignals, request)
            try:
                async for signal in stream:
                    last = signal.signal_id
                    self._send_frame(
                        {
                            "type": "desk_signal",
                            "txn_id": signal.txn_id,
                            "kind": signal.kind,
                            "payload": signal.payload,
                            "signal_id": signal.signal_id,
                        }
                    )
            except grpc.aio.AioRpcError as exc:
                log.warning("desk signals of %s: %s", txn_id, exc.code())
            finally:
                stream.cancel()
            await asyncio.sleep(RETRY_SECONDS)

    async def _stop(self, txn_id: str) -> None:
        found = self._relays.pop(txn_id, None)
        if found is not None:
            found[1].cancel()
            with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
                await found[1]

    async def page_gone(self, send: Send) -> None:
        for txn_id, (owner, _) in list(self._relays.items()):
            if owner is send:
                await self._stop(txn_id)
                with contextlib.suppress(grpc.aio.AioRpcError):
                    bye = pb.DeskSignalRequest(txn_id=txn_id, kind="bye")
                    await self._client.call(self._client.tube.SendDeskSignal, bye)

    async def stop(self) -> None:
        for txn_id in list(self._relays):
            await self._stop(txn_id)
