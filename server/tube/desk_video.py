"""The back office's camera on the customer's screen: the WebRTC signalling the desk (a
back-office teller's console page) and the terminal (its kiosk page) exchange for one tube
transaction. One-way video, browser to browser; the server stores and relays the SDP and ICE
candidates (``tube_desk_signals``), never reads them (docs/flows/tube.md "Back office on the
customer's screen").

Who may: the desk, a teller with the ``back_office`` skill of the transaction's branch (the
rules ``back_office_skill`` / ``own_branch_only``, as every TubeDesk call); the terminal, on its
own transactions only (NOT_FOUND for another's). Only while the transaction is not final
(FAILED_PRECONDITION, reason ``txn_final``); a ``bye`` ends the video.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select

from branchline.common.errors import FailedPrecondition, InvalidArgument, NotFound
from branchline.server.auth import Principal
from branchline.server.delivery.bus import TOPIC_DESK, signal_in_transaction
from branchline.server.storage import commit_order
from branchline.server.tube import model as m
from branchline.server.tube import store
from branchline.server.tube import validate as v
from branchline.server.tube.backoffice import BackOffice
from branchline.server.tube.schema import tube_desk_signals

DESK, TERMINAL = "desk", "terminal"
KINDS = {DESK: ("offer", "candidate", "bye"), TERMINAL: ("answer", "candidate", "bye")}
MAX_SDP = 16 * 1024
MAX_CANDIDATE = 1024
# Desk signals older than this are not pushed to a terminal that (re)connects.
PUSH_WINDOW = timedelta(minutes=10)
# Built once: the push round binds the terminals (at most _CHUNK a statement).
_DESK_SIGNALS = (
    select(tube_desk_signals)
    .where(
        tube_desk_signals.c.terminal_id.in_(bindparam("ids", expanding=True)),
        tube_desk_signals.c.sender == DESK,
        tube_desk_signals.c.id > bindparam("after"),
        tube_desk_signals.c.at > bindparam("since"),
    )
    .order_by(tube_desk_signals.c.id)
)
_CHUNK = 500


@dataclass(frozen=True)
class DeskSignalView:
    signal_id: int
    txn_id: str
    sender: str
    kind: str
    payload: str
    at: datetime


def _view(row: Any) -> DeskSignalView:
    at = row.at if row.at.tzinfo is not None else row.at.replace(tzinfo=UTC)
    return DeskSignalView(int(row.id), row.txn_id, row.sender, row.kind, row.payload, at)


def _check(sender: str, kind: str, payload: str) -> None:
    if kind not in KINDS[sender]:
        raise InvalidArgument("kind", f"must be one of {', '.join(KINDS[sender])}")
    if kind == "bye":
        return
    limit = MAX_CANDIDATE if kind == "candidate" else MAX_SDP
    if not payload:
        raise InvalidArgument("payload", "must not be empty")
    if len(payload.encode()) > limit:
        raise InvalidArgument("payload", f"a {kind} is at most {limit} bytes")


def _open_txn(conn: Any, txn_id: str) -> Any:
    v.txn_id(txn_id, "txn_id")
    row = store.load(conn, txn_id)
    if row is None:
        raise NotFound(
            f"txn_id: no tube transaction {txn_id!r}", field="txn_id", reason="not_found"
        )
    return row


def _not_final(row: Any) -> None:
    if row.state in m.FINAL:
        raise FailedPrecondition(
            f"txn_id: {row.kind} {row.txn_id} is {row.state}; its video has ended",
            field="txn_id",
            reason="txn_final",
        )


class DeskVideo(BackOffice):
    def add_desk_signal(
        self, principal: Principal, txn_id: str, kind: str, payload: str
    ) -> DeskSignalView:
        """The desk's offer / candidate / bye for the terminal of ``txn_id``."""
        _check(DESK, kind, payload)
        with store.transaction(self.engine, self.now()) as tx:
            teller_id, branch = self._desk(tx.conn, principal)
            row = _open_txn(tx.conn, txn_id)
            self._in_branch(row, teller_id, branch)
            _not_final(row)
            return self._insert(tx, row, DESK, kind, payload)

    def terminal_desk_signal(
        self, terminal_id: str, txn_id: str, kind: str, payload: str
    ) -> DeskSignalView:
        """The terminal's answer / candidate / bye to the desk's video of its ``txn_id``."""
        _check(TERMINAL, kind, payload)
        with store.transaction(self.engine, self.now()) as tx:
            row = _open_txn(tx.conn, txn_id)
            if row.terminal_id != terminal_id:
                raise NotFound(
                    f"txn_id: no tube transaction {txn_id!r} of this terminal",
                    field="txn_id",
                    reason="not_found",
                )
            _not_final(row)
            return self._insert(tx, row, TERMINAL, kind, payload)

    @staticmethod
    def _insert(tx: store.Tx, row: Any, sender: str, kind: str, payload: str) -> DeskSignalView:
        values = {
            "txn_id": row.txn_id,
            "terminal_id": row.terminal_id,
            "sender": sender,
            "kind": kind,
            "payload": payload,
            "at": tx.now,
        }
        # The desk's signals are tailed per terminal, the terminal's per transaction.
        commit_order.take_turns(tx.conn, f"tube_desk_signals:{row.terminal_id}:{sender}")
        signal_id = tx.conn.execute(
            tube_desk_signals.insert().values(**values).returning(tube_desk_signals.c.id)
        ).scalar_one()
        # Wakes the terminal's pusher and the desk's watch, on whichever replica they are.
        signal_in_transaction(tx.conn, TOPIC_DESK)
        return DeskSignalView(int(signal_id), row.txn_id, sender, kind, payload, tx.now)

    def desk_signals_after(
        self, principal: Principal, txn_id: str, after_id: int, *, check_access: bool = True
    ) -> list[DeskSignalView]:
        """The terminal's signals for ``txn_id`` after ``after_id`` (for the desk)."""
        with self.engine.connect() as conn:
            if check_access:
                teller_id, branch = self._desk(conn, principal)
                self._in_branch(_open_txn(conn, txn_id), teller_id, branch)
            rows = conn.execute(
                select(tube_desk_signals)
                .where(
                    tube_desk_signals.c.txn_id == txn_id,
                    tube_desk_signals.c.sender == TERMINAL,
                    tube_desk_signals.c.id > after_id,
                )
                .order_by(tube_desk_signals.c.id)
            )
            return [_view(r) for r in rows]

    def desk_signals_for_terminal(self, terminal_id: str, after_id: int) -> list[DeskSignalView]:
        """The desk's recent signals for the terminal's transactions after ``after_id``."""
        return self.desk_signals_for_terminals({terminal_id: after_id}).get(terminal_id, [])

    def desk_signals_for_terminals(
        self, after: Mapping[str, int]
    ) -> dict[str, list[DeskSignalView]]:
        """``desk_signals_for_terminal`` for many terminals (terminal -> the last signal id it
        was pushed) in one statement per 500: the push round runs five times a second for
        every connected terminal, and a thread and a query each were a large part of the
        server's CPU under load. Only terminals with something new are in the answer."""
        since = self.now() - PUSH_WINDOW
        found: dict[str, list[DeskSignalView]] = {}
        ids = list(after)
        with self.engine.connect() as conn:
            for i in range(0, len(ids), _CHUNK):
                chunk = ids[i : i + _CHUNK]
                rows = conn.execute(
                    _DESK_SIGNALS,
                    {"ids": chunk, "after": min(after[t] for t in chunk), "since": since},
                )
                for r in rows:
                    if r.id > after[r.terminal_id]:
                        found.setdefault(r.terminal_id, []).append(_view(r))
        return found
