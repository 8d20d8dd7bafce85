"""The terminal's side: ``tube_open``, ``tube_event`` and ``tube_query``, each applied once.

``answers`` stores each first answer and gives it again; ``events`` applies ``tube_event``;
here ``tube_open`` (its checks, quote and hold are the plain functions of ``opening``; this
is where the wire's message becomes an ``OpenRequest`` and the stored row a reply) and
``tube_query``. A withdrawal's hold, like every ledger call, is made BEFORE the record is
written, idempotent on ``Reference(terminal, "<txn_id>:hold")``, so a retry after a crash
completes with the same hold.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from branchline.common.errors import DomainError, FailedPrecondition, InvalidArgument, NotFound
from branchline.server.storage.engine import connect
from branchline.server.tube import convert, opening, store
from branchline.server.tube import model as m
from branchline.server.tube import validate as v
from branchline.server.tube.answers import OPEN_KIND, Raced, refusal
from branchline.server.tube.events import TerminalEvents, asset_text
from branchline.v1 import tube_pb2 as pb


class TerminalSide(TerminalEvents):
    # -- tube_open --------------------------------------------------------------------------

    def handle_open(
        self, terminal_id: str, message: pb.TubeOpen, now: datetime | None = None
    ) -> pb.TubeReply:
        """Open a deposit (nothing moves yet) or a withdrawal (the amount is held)."""
        at = now or self.now()
        try:
            request_id = v.request_id(message.request_id, "tube_open.request_id")
        except DomainError as exc:  # nothing to key a stored answer on
            return refusal(message.request_id[: v.MAX_REQUEST_ID], exc)
        return self._once(
            terminal_id,
            request_id,
            OPEN_KIND,
            lambda: self._open(terminal_id, request_id, message, at),
        )

    def _open(
        self, terminal_id: str, request_id: str, message: pb.TubeOpen, now: datetime
    ) -> pb.TubeReply:
        request = convert.open_request(message)
        try:
            txn_id = v.txn_id(request.txn_id, "tube_open.txn_id")
            if request.kind is None:
                raise InvalidArgument("tube_open.kind", "deposit or withdrawal is required")
            existing = self._read(txn_id)
            if existing is not None:
                if existing.terminal_id == terminal_id and existing.open_hash == request.digest:
                    # The same open again (a recovering terminal): the record as it is now.
                    reply = pb.TubeReply(request_id=request_id, txn=convert.txn_to_pb(existing))
                    return self._answer(terminal_id, request_id, OPEN_KIND, reply, now)
                # Whose it is stays unsaid: another terminal's transaction is not revealed.
                raise FailedPrecondition(
                    f"tube_open.txn_id: {txn_id!r} is already used for another transaction; "
                    "make a new transaction id",
                    field="tube_open.txn_id",
                    reason="txn_id_reused",
                )
            values = opening.open_transaction(self, terminal_id, txn_id, request, now).record(now)
        except DomainError as exc:
            return self._refuse(terminal_id, request_id, OPEN_KIND, exc, now)
        try:
            with store.transaction(self.engine, now) as tx:
                row = store.insert(tx.conn, values)
                tx.event(row, "open", values["updated_by"], _open_detail(row))
                reply = pb.TubeReply(request_id=request_id, txn=convert.txn_to_pb(row))
                self._answer(terminal_id, request_id, OPEN_KIND, reply, now, tx)
        except IntegrityError:  # the same request or txn_id, stored a moment ago elsewhere
            raise Raced() from None
        # DEBUG: tube_events records every change (actor, detail); a log line per message
        # cost ~9 % of a saturated server's Python time (py-spy, 2026-12-07).
        self._log("tube_opened", row, logging.DEBUG, customer_id=row.customer_id)
        self._notify(row, reply.txn)
        return reply

    # -- tube_query -------------------------------------------------------------------------

    def query(self, terminal_id: str, txn_id: str = "") -> pb.TubeReply:
        """One of this terminal's transactions (also in ``txns``), or every unfinished one."""
        if not txn_id:
            with connect(self.engine) as conn:
                rows = store.of_terminal(conn, terminal_id, m.ACTIVE)
            return pb.TubeReply(txns=[convert.txn_to_pb(r) for r in rows])
        try:
            v.txn_id(txn_id, "tube_query.txn_id")
        except DomainError as exc:
            return refusal("", exc)
        row = self._read(txn_id)
        if row is None or row.terminal_id != terminal_id:
            return refusal(
                "",
                NotFound(
                    f"tube_query.txn_id: no tube transaction {txn_id!r} of this terminal",
                    field="tube_query.txn_id",
                    reason="not_found",
                ),
            )
        txn = convert.txn_to_pb(row)
        return pb.TubeReply(txn=txn, txns=[txn])


def _open_detail(row: Any) -> str:
    what = asset_text(row.requested_kind, row.requested_currency, row.requested_minor)
    where = "into" if row.kind == m.DEPOSIT else "from"
    text = f"{row.kind} of {what} {where} account {row.account_id}"
    if row.rate_version:
        amount = convert.amount_text(row.account_minor, row.account_currency)
        text += f" ({amount} {row.account_currency} at {row.rate}, rates v{row.rate_version})"
    if row.hold_id:
        text += f"; hold {row.hold_id}"
    return text
