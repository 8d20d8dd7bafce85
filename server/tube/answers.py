"""The first answer to each terminal message, stored and given again: exactly once.

Every open and event carries the terminal's outbox key (request_id). The first answer —
refusals included — is stored in ``request_results`` in the same database transaction as
the change it describes, and a repeat gets those very bytes back. A refusal carries the
stable reason, the message and the field (``TubeReply.field``) as data.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from branchline.common.errors import DomainError, InvalidArgument
from branchline.common.logs import log_event
from branchline.server.storage.engine import connect
from branchline.server.tube import convert, store
from branchline.server.tube.core import TubeCore, log
from branchline.v1 import tube_pb2 as pb

OPEN_KIND = "tube_open"
EVENT_KIND = "tube_event"
# Rounds of "someone else got there first, look again" before giving up.
ATTEMPTS = 5


class Raced(Exception):
    """Another request changed the record (or stored the answer) first: start over."""


def refusal(
    request_id: str, exc: DomainError, txn: pb.TubeTransaction | None = None
) -> pb.TubeReply:
    """The reply refusing a message: the stable reason, the message, the field as data."""
    reply = pb.TubeReply(
        request_id=request_id, code=exc.reason, message=exc.message, field=exc.field
    )
    if txn is not None:
        reply.txn.CopyFrom(txn)
    return reply


class Answers(TubeCore):
    def _first_reply(self, terminal_id: str, request_id: str, kind: str) -> pb.TubeReply | None:
        with connect(self.engine) as conn:
            found = store.stored_reply(conn, terminal_id, request_id)
        if found is None:
            return None
        stored_kind, data = found
        if stored_kind != kind:
            # Not stored: the first answer under this key belongs to another message.
            return refusal(
                request_id,
                InvalidArgument(
                    f"{kind}.request_id",
                    f"{request_id!r} already answered a {stored_kind}",
                    reason="request_id_reused",
                ),
            )
        return pb.TubeReply.FromString(data)

    def _answer(
        self,
        terminal_id: str,
        request_id: str,
        kind: str,
        reply: pb.TubeReply,
        now: datetime,
        tx: store.Tx | None = None,
    ) -> pb.TubeReply:
        """Store the first answer (in ``tx``, with the change it describes, or alone)."""
        data = reply.SerializeToString()
        if tx is not None:
            store.store_reply(tx.conn, terminal_id, request_id, kind, data, now)
            return reply
        try:
            with store.transaction(self.engine, now) as own:
                store.store_reply(own.conn, terminal_id, request_id, kind, data, now)
        except IntegrityError:
            raise Raced() from None
        return reply

    def _refuse(
        self,
        terminal_id: str,
        request_id: str,
        kind: str,
        exc: DomainError,
        now: datetime,
        row: Any = None,
    ) -> pb.TubeReply:
        txn = convert.txn_to_pb(row) if row is not None else None
        self._log_refusal(terminal_id, kind, exc, row)
        return self._answer(terminal_id, request_id, kind, refusal(request_id, exc, txn), now)

    def _log_refusal(self, terminal_id: str, kind: str, exc: DomainError, row: Any) -> None:
        log_event(
            log,
            "tube_refused",
            logging.INFO,
            terminal_id=terminal_id,
            message_kind=kind,
            code=exc.code,
            txn_id=row.txn_id if row is not None else None,
        )

    @store.retrying
    def _once(self, terminal_id: str, request_id: str, kind: str, apply: Any) -> pb.TubeReply:
        for _ in range(ATTEMPTS):
            first = self._first_reply(terminal_id, request_id, kind)
            if first is not None:
                return first
            try:
                result: pb.TubeReply = apply()
                return result
            except Raced:
                continue
        raise RuntimeError(f"{kind} {request_id}: raced {ATTEMPTS} times; try again")
