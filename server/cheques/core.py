"""What every step of the sale shares: the database, the clock, the face matcher (made on
first use: loading dlib's models takes a second), exactly-once answers and the listeners
told after each commit (the branch display)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, select

from branchline.common.errors import DomainError, FailedPrecondition, PermissionDenied
from branchline.common.logs import log_event
from branchline.server.cheques import rules, view
from branchline.server.cheques.schema import cheque_incidents, cheque_purchases
from branchline.server.faces.matcher import FaceMatcher
from branchline.server.faces.settings import FaceSettings, read_face_settings
from branchline.server.ledger.idempotency import store_response, stored_response
from branchline.server.ledger.postings import run_write
from branchline.server.ledger.sessions import CustomerSessions
from branchline.v1 import cheques_pb2 as pb

log = logging.getLogger("branchline.server.cheques")

# Told, after the commit, about each changed purchase: (branch, purchase_id).
Listener = Callable[[str, str], None]
# Told the record of each purchase someone other than its terminal changed (the cheque_update push).
Pusher = Callable[[pb.ChequePurchase], None]
KINDS = {
    "InvalidArgument": "invalid_argument",
    "PermissionDenied": "permission_denied",
    "FailedPrecondition": "failed_precondition",
    "NotFound": "not_found",
    "AlreadyExists": "already_exists",
    "Unavailable": "unavailable",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def error_kind(exc: DomainError) -> str:
    return exc.status.lower()


@dataclass
class Outcome:
    """What a step did: the purchase it touched (if any) and, when the step's effects are
    kept but the customer is refused (a failed face, a wrong code), the refusal."""

    purchase_id: str = ""
    refusal: DomainError | None = None


Step = Callable[[Connection, datetime], Outcome]


class ChequeCore:
    def __init__(
        self,
        engine: Engine,
        sessions: CustomerSessions | None,
        matcher_factory: Callable[[], FaceMatcher] | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self.sessions = sessions
        self._matcher_factory = matcher_factory
        self._matcher: FaceMatcher | None = None
        self._matcher_lock = threading.Lock()
        self.clock = clock
        self._listeners: list[Listener] = []
        self._pushers: list[Pusher] = []

    # --- plumbing ---

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def notify(self, branch: str, purchase_id: str) -> None:
        for listener in list(self._listeners):
            try:
                listener(branch, purchase_id)
            except Exception:  # a listener never breaks the sale
                log.exception("cheque listener failed")

    def add_pusher(self, pusher: Pusher) -> None:
        self._pushers.append(pusher)

    def changed_by_others(self, purchase_ids: Iterable[str]) -> None:
        """After the commit of a change someone other than the purchases' terminal made (the
        desk's stock or purchaser, the sweep's incident): their records as they now read go
        to the pushers (the terminal learns by ``cheque_update``), the listeners are told."""
        ids = list(dict.fromkeys(purchase_ids))
        if not ids:
            return
        with self.engine.connect() as conn:
            now = self.clock()
            settings = rules.config(conn)
            records = [view.purchase(conn, pid, settings, now) for pid in ids]
        for record in records:
            for pusher in list(self._pushers):
                try:
                    pusher(record)
                except Exception:  # a push is a hint: it never breaks the change
                    log.exception("cheque pusher failed")
            self.notify(record.branch, record.purchase_id)

    def matcher(self) -> FaceMatcher:
        with self._matcher_lock:
            if self._matcher is None:
                if self._matcher_factory is None:
                    from branchline.server.faces.dlib_backend import DlibFaceMatcher

                    self._matcher = DlibFaceMatcher()
                else:
                    self._matcher = self._matcher_factory()
            return self._matcher

    @staticmethod
    def face_settings(settings: dict[str, str]) -> FaceSettings:
        table: dict[str, Any] = {}
        for key, value in settings.items():
            if key.startswith("face.") and key != "face.max_attempts":
                name = key[len("face.") :]
                table[name] = int(value) if value.isdigit() else float(value)
        return read_face_settings(table)

    # --- exactly once ---

    def apply(
        self, terminal_id: str, body: str, request_id: str, purchase_id: str, step: Step
    ) -> pb.ChequeReply:
        """Run ``step`` once for ``request_id``: its answer is stored with its effects and a
        repeat gets the stored answer. A DomainError the step raises rolls its effects back
        (a savepoint) and is the stored answer too."""
        touched: list[tuple[str, str]] = []

        def op(conn: Connection) -> pb.ChequeReply:
            touched.clear()
            stored = stored_response(conn, terminal_id, request_id)
            if stored is not None:
                return _replayed(stored, body, request_id, purchase_id)
            now = self.clock()
            outcome = Outcome(purchase_id)
            try:
                with conn.begin_nested():
                    outcome = step(conn, now)
            except DomainError as exc:
                outcome = Outcome(purchase_id if _exists(conn, purchase_id) else "", exc)
            reply = self.reply(conn, request_id, outcome, now)
            store_response(conn, terminal_id, request_id, body, reply.SerializeToString(), now)
            if reply.HasField("purchase"):
                touched.append((reply.purchase.branch, reply.purchase.purchase_id))
            return reply

        reply = run_write(self.engine, op)
        for branch, pid in touched:
            self.notify(branch, pid)
        if reply.code:
            log_event(
                log,
                "cheque_refused",
                logging.INFO,
                terminal_id=terminal_id,
                body=body,
                code=reply.code,
            )
        return reply

    def reply(
        self, conn: Connection, request_id: str, outcome: Outcome, now: datetime
    ) -> pb.ChequeReply:
        out = pb.ChequeReply(request_id=request_id)
        if outcome.purchase_id and _exists(conn, outcome.purchase_id):
            out.purchase.CopyFrom(view.purchase(conn, outcome.purchase_id, rules.config(conn), now))
        if outcome.refusal is not None:
            exc = outcome.refusal
            out.kind = error_kind(exc)
            out.code = exc.reason
            out.message = exc.message[:500]
            out.field = exc.field
        return out

    # --- reading ---

    def purchase_row(self, conn: Connection, terminal_id: str, purchase_id: str) -> Any:
        row = conn.execute(
            select(cheque_purchases).where(cheque_purchases.c.purchase_id == purchase_id)
        ).first()
        if row is None:
            raise FailedPrecondition(
                f"purchase {purchase_id!r} was never started",
                reason="unknown_purchase",
                field="purchase_id",
            )
        if row.terminal_id != terminal_id:
            raise PermissionDenied(
                "the purchase belongs to another terminal", rule="not_your_purchase"
            )
        return row

    def query(self, terminal_id: str, purchase_id: str) -> pb.ChequeReply:
        with self.engine.connect() as conn:
            now = self.clock()
            settings = rules.config(conn)
            out = pb.ChequeReply()
            if purchase_id:
                try:
                    self.purchase_row(conn, terminal_id, purchase_id)
                except DomainError as exc:
                    return pb.ChequeReply(
                        kind=error_kind(exc), code=exc.reason, message=exc.message, field=exc.field
                    )
                out.purchases.append(view.purchase(conn, purchase_id, settings, now))
                return out
            rows = conn.execute(
                select(cheque_purchases.c.purchase_id)
                .where(
                    cheque_purchases.c.terminal_id == terminal_id,
                    cheque_purchases.c.state.not_in(view.FINAL),
                )
                .order_by(cheque_purchases.c.created_at)
            ).all()
            out.purchases.extend(view.purchase(conn, r.purchase_id, settings, now) for r in rows)
            return out


def _exists(conn: Connection, purchase_id: str) -> bool:
    if not purchase_id:
        return False
    return (
        conn.execute(
            select(cheque_purchases.c.purchase_id).where(
                cheque_purchases.c.purchase_id == purchase_id
            )
        ).first()
        is not None
    )


def _replayed(stored: bytes, body: str, request_id: str, purchase_id: str) -> pb.ChequeReply:
    reply = pb.ChequeReply.FromString(stored)
    if reply.purchase.purchase_id and reply.purchase.purchase_id != purchase_id:
        return pb.ChequeReply(
            request_id=request_id,
            kind="failed_precondition",
            code="request_reused",
            message=f"request {request_id} was already used for another purchase",
        )
    return reply


def open_incident(conn: Connection, row: Any, kind: str, detail: str, now: datetime) -> int:
    result = conn.execute(
        cheque_incidents.insert().values(
            branch=row.branch,
            terminal_id=row.terminal_id,
            purchase_id=row.purchase_id,
            kind=kind,
            detail=detail[:2000],
            opened_at=now,
        )
    )
    incident_id = int(result.inserted_primary_key[0])  # type: ignore[index]
    log_event(
        log,
        "cheque_incident",
        logging.WARNING,
        incident_id=incident_id,
        kind=kind,
        terminal_id=row.terminal_id,
        purchase_id=row.purchase_id,
    )
    return incident_id
