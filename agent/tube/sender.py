"""Delivers the outbox to the server, oldest first, and hands each answer to whoever waits.

A message is stored as its TerminalLink body (``kind`` = the oneof field's name, ``payload`` =
the body serialized without ``request_id``); the sender fills ``request_id`` with the outbox
key (``<terminal id>:<seq>``) each time it sends, so every retry carries the same key and the
server applies it once. Once applied, credentials in it (``SECRETS``) are cleared from what
the outbox keeps. The server's answer (a ``TubeReply``, or a ``ChequeReply`` for cheque messages) is kept in the outbox with the
message — a repeat gets the first answer back, and so does a transaction recovering after a
crash, without asking again.

Transient refusals (``unavailable``: the server's database is down) are retried; a message
whose send fails waits for the next wake-up or reconnection and blocks the ones after it, so
the server sees each terminal's messages in the order they were journaled. A saturated
server's ``server_busy`` (not applied, nothing stored) is retried too, after the answer's
``retry_after_ms`` and with exponential backoff (jittered) while it keeps saying so.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections.abc import Callable
from typing import Any

from google.protobuf.message import DecodeError, Message

from branchline.agent import failpoints
from branchline.agent.journal.outbox import Outbox, OutboxMessage
from branchline.agent.uplink import Uplink, UplinkUnavailable
from branchline.common.logs import log_event
from branchline.common.waiting import wait_set
from branchline.v1 import cheques_pb2, tube_pb2
from branchline.v1 import terminal_link_pb2 as link_pb2

log = logging.getLogger("branchline.agent.outbox")

# TerminalLink bodies the outbox carries, by the oneof field's name.
BODIES: dict[str, type[Any]] = {
    "tube_open": tube_pb2.TubeOpen,
    "tube_event": tube_pb2.TubeEvent,
    # Cheque-book sale (agent/cheques/): answered with cheque_reply.
    "cheque_start": cheques_pb2.ChequeStart,
    "cheque_id_card": cheques_pb2.ChequeIdCard,
    "cheque_face": cheques_pb2.ChequeFace,
    "cheque_order": cheques_pb2.ChequeOrder,
    "cheque_leaves": cheques_pb2.ChequeLeaves,
    "cheque_finish": cheques_pb2.ChequeFinish,
}
# The ServerMessage body that answers each outbox kind.
REPLY_FIELD = {
    kind: "cheque_reply" if kind.startswith("cheque_") else "tube_reply" for kind in BODIES
}
# Refusals that say "not now" rather than "no": the message is sent again later.
TRANSIENT_CODES = frozenset({"unavailable", "internal", "server_busy"})
BUSY_CODE = "server_busy"
# Backoff on consecutive server_busy answers: retry_after x 2^n (n <= BUSY_MAX_DOUBLINGS),
# at most BUSY_MAX_WAIT seconds, each wait jittered by +-20 % so terminals spread out.
BUSY_MAX_DOUBLINGS = 5
BUSY_MAX_WAIT = 30.0
BATCH = 50


# Fields that are credentials, not facts: the server needs them once; the outbox, which is
# kept as evidence, must not hold them afterwards. The customer's session token lets this
# terminal act for the customer until it expires.
# Dotted paths name fields of sub-messages (the purchase code is single use, but still a
# credential until used).
SECRETS: dict[str, tuple[str, ...]] = {
    "tube_open": ("session_token",),
    "cheque_start": ("card_pin.session_token", "purchase_code.purchase_code"),
}


class OutboxBodyError(Exception):
    """A stored message that cannot be sent (unknown kind, damaged payload)."""


def encode_body(body: Message) -> bytes:
    """The payload stored for ``body``: serialized with its request_id left empty."""
    copy = type(body)()
    copy.CopyFrom(body)
    copy.request_id = ""  # type: ignore[attr-defined]
    return copy.SerializeToString()


def without_secrets(message: OutboxMessage, body: Message) -> bytes | None:
    """The payload to keep once the server has applied ``message``; None: keep it as it is."""
    fields = SECRETS.get(message.kind, ())
    if not fields:
        return None
    copy = type(body)()
    copy.CopyFrom(body)
    for field in fields:
        *path, last = field.split(".")
        holder: Any = copy
        for name in path:
            holder = getattr(holder, name)
        holder.ClearField(last)
    return encode_body(copy)


def decode_body(message: OutboxMessage) -> Message:
    cls = BODIES.get(message.kind)
    if cls is None:
        raise OutboxBodyError(f"outbox message {message.seq}: unknown kind {message.kind!r}")
    try:
        body: Message = cls.FromString(message.payload)
    except DecodeError as exc:
        raise OutboxBodyError(f"outbox message {message.seq}: damaged payload: {exc}") from None
    body.request_id = message.key  # type: ignore[attr-defined]
    return body


def _refusal_text(error: link_pb2.RequestError) -> str:
    """A TerminalLink refusal for the outbox's last_error: code, field (as the server named
    it) and message."""
    where = f" (field {error.field})" if error.field else ""
    return f"{error.code}{where}: {error.message}"


class OutboxSender:
    def __init__(
        self,
        outbox: Outbox,
        uplink: Uplink,
        *,
        request_timeout: float = 15.0,
        retry_seconds: float = 1.0,
        on_reply: Callable[[tube_pb2.TubeReply], None] | None = None,
    ) -> None:
        self._handlers: dict[str, Callable[[Any], None]] = {}
        if on_reply is not None:
            self._handlers["tube_reply"] = on_reply
        self._outbox = outbox
        self._uplink = uplink
        self._request_timeout = request_timeout
        self._retry_seconds = retry_seconds
        self._wake = asyncio.Event()
        self._waiters: dict[int, list[asyncio.Future[bytes]]] = {}
        self._busy_streak = 0  # consecutive server_busy answers

    def on_reply(self, reply_field: str, handler: Callable[[Any], None]) -> None:
        """Hand every applied answer of that ServerMessage body (e.g. cheque_reply) on."""
        self._handlers[reply_field] = handler

    def kick(self) -> None:
        """Something new was queued, or the link came back: send now."""
        self._wake.set()

    async def answer(self, seq: int) -> bytes:
        """The server's (first) answer to outbox message ``seq``, once it has one."""
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(seq, []).append(future)
        try:
            # Registered before looking, so an answer stored meanwhile is not missed.
            stored = await asyncio.to_thread(self._outbox.acknowledged_response, seq)
            if stored is not None:
                return stored
            self.kick()
            return await future
        finally:
            waiting = self._waiters.get(seq, [])
            if future in waiting:
                waiting.remove(future)
            if not waiting:
                self._waiters.pop(seq, None)

    async def run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self._send_pending()
            except Exception as exc:  # the sender must outlive any one bad round
                log_event(log, "outbox_round_failed", logging.ERROR, error=repr(exc))
            # Not asyncio.wait_for: on 3.11 it can drop the cancel that stops the agent
            # (common/waiting.py).
            await wait_set(self._wake, self._retry_seconds)

    def busy_wait(self, retry_after: float) -> float:
        """How long to wait after a server_busy answer (this one counted)."""
        self._busy_streak += 1
        doublings = min(self._busy_streak - 1, BUSY_MAX_DOUBLINGS)
        wait = min(max(retry_after, self._retry_seconds) * 2**doublings, BUSY_MAX_WAIT)
        return wait * random.uniform(0.8, 1.2)

    async def _send_pending(self) -> None:
        pending = await asyncio.to_thread(self._outbox.pending, BATCH)
        if not pending:
            return
        if not self._uplink.connected:
            # Counted on the oldest message, so `branchline-diag outbox` shows why it waits.
            why = f"not connected to the server ({self._uplink.last_error or 'connecting'})"
            await asyncio.to_thread(self._outbox.mark_attempt, pending[0].seq, why)
            return
        for message in pending:
            if not await self._send_one(message):
                return
        if len(pending) == BATCH:
            self.kick()

    # long: one answer per outcome (applied, refused, busy, unavailable, lost), each its own rule
    async def _send_one(self, message: OutboxMessage) -> bool:
        """True when the message is answered for good; False: stop this round, retry later."""
        try:
            body = decode_body(message)
        except OutboxBodyError as exc:
            # Nothing can ever send it; keep it (it is evidence) but do not let it block.
            log_event(log, "outbox_message_unsendable", logging.CRITICAL, error=str(exc))
            await asyncio.to_thread(self._outbox.mark_attempt, message.seq, str(exc))
            return True
        try:
            reply = await self._uplink.request(
                timeout=self._request_timeout, **{message.kind: body}
            )
        except UplinkUnavailable as exc:
            await asyncio.to_thread(self._outbox.mark_attempt, message.seq, str(exc))
            return False
        reply_field = REPLY_FIELD[message.kind]
        if not reply.HasField(reply_field):  # type: ignore[arg-type]
            what = (
                _refusal_text(reply.error) if reply.HasField("error") else reply.WhichOneof("body")
            )
            await asyncio.to_thread(
                self._outbox.mark_attempt, message.seq, f"unexpected answer: {what}"
            )
            return False
        answer = getattr(reply, reply_field)
        transient = answer.code in TRANSIENT_CODES or (
            reply_field == "cheque_reply" and answer.kind in TRANSIENT_CODES
        )
        if transient:
            await asyncio.to_thread(
                self._outbox.mark_attempt, message.seq, f"{answer.code}: {answer.message}"
            )
            if answer.code == BUSY_CODE:
                await asyncio.sleep(self.busy_wait(answer.retry_after_ms / 1000))
            return False
        self._busy_streak = 0
        # The server has applied it; dying here loses only the answer, which the same key
        # gets back from the server after a restart.
        failpoints.hit("outbox.answered", message.seq)
        stored = await asyncio.to_thread(
            functools.partial(
                self._outbox.mark_acknowledged,
                message.seq,
                answer.SerializeToString(),
                keep_payload=without_secrets(message, body),
            )
        )
        log_event(
            log,
            "outbox_acknowledged",
            key=message.key,
            kind=message.kind,
            code=answer.code or "applied",
        )
        for future in list(self._waiters.get(message.seq, [])):
            if not future.done():
                future.set_result(stored)
        handler = self._handlers.get(reply_field)
        if handler is not None:
            handler(answer)
        return True
