"""The first three steps: the purchase method (``cheque_start``), the ID card
(``cheque_id_card``) and the face (``cheque_face``)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select, update

from branchline.common.errors import (
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
    check_text,
)
from branchline.server.cheques import codes, identity, rules
from branchline.server.cheques.core import ChequeCore, Outcome, open_incident
from branchline.server.cheques.schema import (
    cheque_face_decisions,
    cheque_purchasers,
    cheque_purchases,
)
from branchline.server.faces.checks import FaceCapture
from branchline.server.faces.verify import FaceDecision, verify
from branchline.server.ledger.idempotency import stored_response
from branchline.server.ledger.schema import accounts
from branchline.server.storage.engine import write_transaction
from branchline.server.storage.schema import terminals
from branchline.v1 import cheques_pb2 as pb

MAX_ID = 64


def _set(conn: Connection, purchase_id: str, now: datetime, actor: str, **values: Any) -> None:
    conn.execute(
        update(cheque_purchases)
        .where(cheque_purchases.c.purchase_id == purchase_id)
        .values(updated_at=now, updated_by=actor, **values)
    )


def _want_state(row: Any, *states: str) -> None:
    if row.state not in states:
        raise FailedPrecondition(
            f"the purchase is {row.state}; this step needs {' or '.join(states)}",
            reason="wrong_state",
        )


def _account_for_method(
    core: ChequeCore, conn: Connection, terminal_id: str, msg: pb.ChequeStart, now: datetime
) -> tuple[str, Any]:
    settings = rules.config(conn)
    method = msg.WhichOneof("method")
    if method is None:
        raise InvalidArgument("method", "card_pin or purchase_code is required")
    rules.check_method(method, settings)
    if method == "card_pin":
        if core.sessions is None:
            raise PermissionDenied("card and PIN are not configured here", rule="method_disabled")
        claims = core.sessions.check(msg.card_pin.session_token, terminal_id, now)
        check_text("card_pin.account_id", msg.card_pin.account_id, max_len=MAX_ID)
        account = rules.account_row(conn, account_id=msg.card_pin.account_id)
        owner = conn.execute(
            select(accounts.c.customer_id).where(accounts.c.account_id == account.account_id)
        ).first()
        if owner is None or owner.customer_id != claims.customer_id:
            raise PermissionDenied(
                "the account is not the signed-in customer's",
                rule="not_your_account",
                field="card_pin.account_id",
            )
        rules.check_account(account, settings)
        return method, account
    number = msg.purchase_code.account_number
    if not number.isascii() or not number.isdigit() or not 6 <= len(number) <= 32:
        raise InvalidArgument("purchase_code.account_number", "6 to 32 digits")
    account = rules.account_row(conn, number=number)
    rules.check_account(account, settings)
    return method, account


# long: the method's checks and the purchase row are one step
def start(core: ChequeCore, terminal_id: str, msg: pb.ChequeStart) -> pb.ChequeReply:
    check_text("request_id", msg.request_id, max_len=128)
    check_text("purchase_id", msg.purchase_id, max_len=MAX_ID)

    def step(conn: Connection, now: datetime) -> Outcome:
        if conn.execute(
            select(cheque_purchases.c.purchase_id).where(
                cheque_purchases.c.purchase_id == msg.purchase_id
            )
        ).first():
            raise AlreadyExists(f"purchase {msg.purchase_id} exists", reason="purchase_exists")
        branch = conn.execute(
            select(terminals.c.branch).where(terminals.c.terminal_id == terminal_id)
        ).scalar()
        if branch is None:
            raise FailedPrecondition("this terminal is not registered", reason="unknown_terminal")
        method, account = _account_for_method(core, conn, terminal_id, msg, now)
        if method == "purchase_code":
            settings = rules.config(conn)
            try:
                codes.redeem_code(
                    conn,
                    account,
                    msg.purchase_code.purchase_code,
                    msg.purchase_id,
                    now,
                    int(settings["code_max_failures"]),
                )
            except codes.CodeRefused as exc:
                if not exc.count_failure:
                    raise
                conn.execute(
                    update(rules.cheque_accounts)
                    .where(rules.cheque_accounts.c.account_id == account.account_id)
                    .values(code_failures=account.code_failures + 1)
                )
                return Outcome("", exc)  # the failure counts: kept, and refused
        ledger = conn.execute(
            select(accounts.c.currency).where(accounts.c.account_id == account.account_id)
        ).one()
        conn.execute(
            cheque_purchases.insert().values(
                purchase_id=msg.purchase_id,
                terminal_id=terminal_id,
                branch=branch,
                state="started",
                method=method,
                account_id=account.account_id,
                face_outcome="",
                face_reason="",
                currency=ledger.currency,
                fee_total_minor=0,
                refund_minor=0,
                reason="",
                created_at=now,
                updated_at=now,
                updated_by=f"terminal:{terminal_id}",
            )
        )
        return Outcome(msg.purchase_id)

    return core.apply(terminal_id, "cheque_start", msg.request_id, msg.purchase_id, step)


def id_card(core: ChequeCore, terminal_id: str, msg: pb.ChequeIdCard) -> pb.ChequeReply:
    check_text("request_id", msg.request_id, max_len=128)
    check_text("purchase_id", msg.purchase_id, max_len=MAX_ID)

    def step(conn: Connection, now: datetime) -> Outcome:
        row = core.purchase_row(conn, terminal_id, msg.purchase_id)
        _want_state(row, "started", "id_checked")
        card = identity.check_card(msg.id_card, now.date())
        if row.state == "id_checked" and card.id_number != row.id_number:
            raise FailedPrecondition("another ID card than the one checked", reason="id_changed")
        buyer = identity.purchaser_for(conn, row.account_id, card.id_number)
        _set(
            conn,
            row.purchase_id,
            now,
            f"terminal:{terminal_id}",
            state="id_checked",
            purchaser_id=buyer.purchaser_id,
            buyer_name=card.name,
            id_number=card.id_number,
            id_photo=msg.id_card.photo or None,
            id_photo_format=msg.id_card.photo_format or None,
        )
        return Outcome(row.purchase_id)

    return core.apply(terminal_id, "cheque_id_card", msg.request_id, msg.purchase_id, step)


# long: the decision, its audit row, the counters and the lock are one transaction
def face(core: ChequeCore, terminal_id: str, msg: pb.ChequeFace) -> pb.ChequeReply:
    check_text("request_id", msg.request_id, max_len=128)
    check_text("purchase_id", msg.purchase_id, max_len=MAX_ID)
    capture = identity.capture_of(msg.capture)
    early = _decide_early(core, terminal_id, msg, capture)

    # long: decision, audit row, counters and lock in one transaction
    def step(conn: Connection, now: datetime) -> Outcome:
        row = core.purchase_row(conn, terminal_id, msg.purchase_id)
        _want_state(row, "id_checked")
        buyer = conn.execute(
            select(cheque_purchasers).where(cheque_purchasers.c.purchaser_id == row.purchaser_id)
        ).first()
        if buyer is None:  # removed by the bank since the ID card was read
            raise PermissionDenied(
                "the card holder is no longer a registered purchaser of this account",
                rule="not_authorised_purchaser",
            )
        if buyer.locked:
            raise PermissionDenied("this purchaser is locked", rule="purchaser_locked")
        settings = rules.config(conn)
        decision = early
        if decision is None or decision.enrolled_sha256 != buyer.face_sha256:
            decision = verify(
                core.matcher(), capture, identity.enrolment_of(buyer), core.face_settings(settings)
            )
        conn.execute(
            cheque_face_decisions.insert().values(
                purchase_id=row.purchase_id,
                purchaser_id=buyer.purchaser_id,
                outcome=decision.outcome,
                reason=decision.reason,
                distance=decision.distance,
                threshold=decision.threshold,
                liveness=decision.liveness,
                liveness_score=decision.liveness_score,
                capture_sha256=decision.capture_sha256,
                enrolled_sha256=decision.enrolled_sha256,
                backend=decision.backend,
                driver=msg.capture.driver,
                decided_at=now,
                image=capture.jpeg,
            )
        )
        actor = f"terminal:{terminal_id}"
        if decision.matched:
            conn.execute(
                update(cheque_purchasers)
                .where(cheque_purchasers.c.purchaser_id == buyer.purchaser_id)
                .values(failed_faces=0)
            )
            _set(
                conn,
                row.purchase_id,
                now,
                actor,
                state="identified",
                face_outcome="match",
                face_reason="",
            )
            return Outcome(row.purchase_id)
        failed = int(buyer.failed_faces) + 1
        limit = int(settings["face_max_attempts"])
        reason = decision.reason or "no_match"
        locked = failed >= limit
        conn.execute(
            update(cheque_purchasers)
            .where(cheque_purchasers.c.purchaser_id == buyer.purchaser_id)
            .values(failed_faces=failed, locked=locked, locked_at=now if locked else None)
        )
        values: dict[str, Any] = {"face_outcome": decision.outcome, "face_reason": reason}
        if locked:
            incident = open_incident(
                conn,
                row,
                "face_locked",
                f"purchaser {buyer.purchaser_id} ({buyer.name}) locked after {failed} failed "
                f"face checks; last: {reason}",
                now,
            )
            values.update(state="locked", reason="purchaser_locked", incident_id=incident)
        _set(conn, row.purchase_id, now, actor, **values)
        if locked:
            refusal = PermissionDenied(
                f"face not verified ({reason}) {failed} times: self-service purchase is locked "
                "for this purchaser; staff were alerted",
                rule="purchaser_locked",
            )
        else:
            refusal = PermissionDenied(
                f"face not verified: {decision.message}; {limit - failed} attempt(s) left",
                rule=reason,
            )
        return Outcome(row.purchase_id, refusal)

    return core.apply(terminal_id, "cheque_face", msg.request_id, msg.purchase_id, step)


def _decide_early(
    core: ChequeCore, terminal_id: str, msg: pb.ChequeFace, capture: FaceCapture
) -> FaceDecision | None:
    """The face decision made before the write transaction (it takes a fraction of a second
    of CPU; the first one also loads the models), so no write lock is held meanwhile. None
    when the request was answered before or the purchase is not waiting for a face: the
    step then refuses or replays as usual, deciding inside only if it must."""
    with core.engine.connect() as conn:
        if stored_response(conn, terminal_id, msg.request_id) is not None:
            return None
        row = conn.execute(
            select(cheque_purchases).where(cheque_purchases.c.purchase_id == msg.purchase_id)
        ).first()
        if row is None or row.terminal_id != terminal_id or row.state != "id_checked":
            return None
        buyer = conn.execute(
            select(cheque_purchasers).where(cheque_purchasers.c.purchaser_id == row.purchaser_id)
        ).first()
        if buyer is None or buyer.locked or buyer.face_descriptor is None:
            return None
        settings = rules.config(conn)
    try:
        return verify(
            core.matcher(), capture, identity.enrolment_of(buyer), core.face_settings(settings)
        )
    except DomainError:
        return None  # bad input: the step raises it again, as the stored refusal


def sweep_images(core: ChequeCore) -> int:
    """Drop the personal images older than the retention: face captures (the decision rows
    stay for audit) and the purchaser's ID card photo (the purchase row stays; the card was
    read just after the purchase began). The number of images dropped."""
    with write_transaction(core.engine) as conn:
        days = int(rules.config(conn)["image_retention_days"])
        now = core.clock()
        before = now - timedelta(days=days)
        captures = conn.execute(
            update(cheque_face_decisions)
            .where(
                cheque_face_decisions.c.image.is_not(None),
                cheque_face_decisions.c.decided_at < before,
            )
            .values(image=None, image_purged_at=now)
        )
        photos = conn.execute(
            update(cheque_purchases)
            .where(cheque_purchases.c.id_photo.is_not(None), cheque_purchases.c.created_at < before)
            .values(id_photo=None)
        )
        return int(captures.rowcount) + int(photos.rowcount)


def descriptor_json(values: Any) -> str:
    return json.dumps([float(v) for v in values])
