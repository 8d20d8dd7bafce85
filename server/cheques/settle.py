"""Per-leaf outcomes (``cheque_leaves``) and the end of a purchase (``cheque_finish``): every
serial to exactly one final state, and the fee of each book not issued complete refunded
once (docs/flows/cheques.md, "Finishing, and the fee on faults")."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select, update

from branchline.common.errors import FailedPrecondition, InvalidArgument, check_text
from branchline.server.cheques import view
from branchline.server.cheques.core import ChequeCore, Outcome, open_incident
from branchline.server.cheques.identify import MAX_ID, _set, _want_state
from branchline.server.cheques.order import _balances, post_fee
from branchline.server.cheques.schema import (
    VOID_REASONS,
    cheque_books,
    cheque_leaves,
    cheque_purchases,
)
from branchline.server.ledger.postings import Reference
from branchline.server.storage.engine import write_transaction
from branchline.v1 import cheques_pb2 as pb

# outcome -> (allowed from, new state)
_MOVES = {
    pb.LEAF_OUTCOME_PRINTED: (("allocated",), "printed"),
    pb.LEAF_OUTCOME_TAKEN: (("printed",), "issued"),
    pb.LEAF_OUTCOME_VOIDED: (("allocated", "printed"), "voided"),
    pb.LEAF_OUTCOME_RETURNED: (("allocated",), "returned"),
}


def _leaf_rows(conn: Connection, purchase_id: str) -> dict[str, Any]:
    rows = conn.execute(
        select(cheque_leaves)
        .where(cheque_leaves.c.purchase_id == purchase_id)
        .order_by(cheque_leaves.c.leaf_id)
    ).all()
    return {view.cheque_number(r.prefix, int(r.serial)): r for r in rows}


def _apply_leaf(conn: Connection, row: Any, i: int, report: pb.LeafReport, now: datetime) -> None:
    field = f"leaves[{i}]"
    if report.outcome not in _MOVES:
        raise InvalidArgument(f"{field}.outcome", "PRINTED, TAKEN, VOIDED or RETURNED")
    sources, target = _MOVES[report.outcome]
    reason = report.void_reason if report.outcome == pb.LEAF_OUTCOME_VOIDED else ""
    if report.outcome == pb.LEAF_OUTCOME_VOIDED and reason not in VOID_REASONS:
        raise InvalidArgument(f"{field}.void_reason", f"one of {', '.join(VOID_REASONS)}")
    if report.outcome != pb.LEAF_OUTCOME_VOIDED and report.void_reason:
        raise InvalidArgument(f"{field}.void_reason", "only for VOIDED")
    if row.state == target and (row.void_reason or "") == reason:
        return  # the same outcome again: nothing to do
    if row.state not in sources:
        shown = f"{row.state} ({row.void_reason})" if row.void_reason else row.state
        raise FailedPrecondition(
            f"{field}: leaf {report.number} is {shown}; it cannot become {target}",
            field=f"{field}.outcome",
            reason="leaf_conflict",
        )
    ocr = report.ocr_serial
    if ocr and (len(ocr) != 8 or not ocr.isdigit()):
        raise InvalidArgument(f"{field}.ocr_serial", "8 digits")
    conn.execute(
        update(cheque_leaves)
        .where(cheque_leaves.c.leaf_id == row.leaf_id, cheque_leaves.c.state == row.state)
        .values(
            state=target,
            void_reason=reason or None,
            ocr_serial=ocr or row.ocr_serial,
            job_id=report.job_id or row.job_id,
            updated_at=now,
        )
    )


def leaves(core: ChequeCore, terminal_id: str, msg: pb.ChequeLeaves) -> pb.ChequeReply:
    check_text("request_id", msg.request_id, max_len=128)
    check_text("purchase_id", msg.purchase_id, max_len=MAX_ID)
    if not msg.leaves:
        raise InvalidArgument("leaves", "at least one leaf")

    def step(conn: Connection, now: datetime) -> Outcome:
        row = core.purchase_row(conn, terminal_id, msg.purchase_id)
        _want_state(row, "ordered", "printing")
        mine = _leaf_rows(conn, row.purchase_id)
        for i, report in enumerate(msg.leaves):
            leaf = mine.get(report.number)
            if leaf is None:
                raise InvalidArgument(
                    f"leaves[{i}].number",
                    f"{report.number[:20]!r} is not a leaf of this purchase",
                    reason="unknown_leaf",
                )
            _apply_leaf(conn, leaf, i, report, now)
            mine = _leaf_rows(conn, row.purchase_id)
        _set(conn, row.purchase_id, now, f"terminal:{terminal_id}", state="printing")
        return Outcome(row.purchase_id)

    return core.apply(terminal_id, "cheque_leaves", msg.request_id, msg.purchase_id, step)


def _settle_leaves(conn: Connection, purchase_id: str, kind: int, now: datetime) -> int:
    """Leaves without a final state to one; returns how many were voided unreported."""
    left = conn.execute(
        select(cheque_leaves).where(
            cheque_leaves.c.purchase_id == purchase_id,
            cheque_leaves.c.state.in_(("allocated", "printed")),
        )
    ).all()
    unreported = 0
    for leaf in left:
        if kind == pb.FINISH_KIND_CANCEL:
            values: dict[str, Any] = {"state": "returned"}
        elif kind == pb.FINISH_KIND_TAKEN and leaf.state == "printed":
            values = {"state": "issued"}
        else:
            values = {"state": "voided", "void_reason": "retained"}
            unreported += leaf.state == "allocated"
        conn.execute(
            update(cheque_leaves)
            .where(cheque_leaves.c.leaf_id == leaf.leaf_id)
            .values(updated_at=now, **values)
        )
    return unreported


def _refund_incomplete(conn: Connection, purchase_id: str) -> int:
    """Mark every book not issued complete refunded; the total to give back."""
    total = 0
    for book in conn.execute(
        select(cheque_books).where(
            cheque_books.c.purchase_id == purchase_id, cheque_books.c.refunded.is_(False)
        )
    ).all():
        states = {
            r.state
            for r in conn.execute(
                select(cheque_leaves.c.state).where(
                    cheque_leaves.c.book_id == book.book_id,
                    cheque_leaves.c.purchase_id == purchase_id,
                )
            )
        }
        if states != {"issued"}:
            conn.execute(
                update(cheque_books)
                .where(cheque_books.c.book_id == book.book_id)
                .values(refunded=True)
            )
            total += int(book.fee_minor)
    return total


# long: the whole settlement of a purchase is one transaction
def finish(core: ChequeCore, terminal_id: str, msg: pb.ChequeFinish) -> pb.ChequeReply:
    check_text("request_id", msg.request_id, max_len=128)
    check_text("purchase_id", msg.purchase_id, max_len=MAX_ID)
    check_text("reason", msg.reason, max_len=MAX_ID, required=False)
    check_text("detail", msg.detail, max_len=500, required=False)
    if msg.kind not in (pb.FINISH_KIND_TAKEN, pb.FINISH_KIND_CANCEL, pb.FINISH_KIND_FAULT):
        raise InvalidArgument("kind", "TAKEN, CANCEL or FAULT")

    def step(conn: Connection, now: datetime) -> Outcome:
        row = core.purchase_row(conn, terminal_id, msg.purchase_id)
        actor = f"terminal:{terminal_id}"
        reason = msg.reason or {pb.FINISH_KIND_CANCEL: "customer_canceled"}.get(msg.kind, "fault")
        if row.state in ("started", "id_checked", "identified"):
            if msg.kind == pb.FINISH_KIND_TAKEN:
                raise FailedPrecondition("nothing was ordered", reason="wrong_state")
            _set(conn, row.purchase_id, now, actor, state="canceled", reason=reason)
            return Outcome(row.purchase_id)
        _want_state(row, "ordered", "printing")
        if msg.kind == pb.FINISH_KIND_CANCEL:
            printed = conn.execute(
                select(cheque_leaves.c.leaf_id).where(
                    cheque_leaves.c.purchase_id == row.purchase_id,
                    cheque_leaves.c.state.in_(("printed", "issued")),
                )
            ).first()
            if printed is not None:
                raise FailedPrecondition(
                    "leaves were printed: finish with FAULT or TAKEN", reason="wrong_state"
                )
        unreported = _settle_leaves(conn, row.purchase_id, msg.kind, now)
        refund = _refund_incomplete(conn, row.purchase_id)
        values: dict[str, Any] = {"reason": reason}
        if refund:
            posting = post_fee(
                conn,
                Reference(terminal_id, msg.request_id),
                row.account_id,
                row.branch,
                row.currency,
                refund,
                f"cheque fee refund {row.purchase_id}",
                now,
                refund=True,
            )
            balance, available = _balances(conn, row.account_id)
            values.update(
                refund_minor=int(row.refund_minor) + refund,
                refund_entry_id=posting.entry_id,
                balance_after_minor=balance,
                available_after_minor=available,
            )
        if msg.kind == pb.FINISH_KIND_FAULT or unreported:
            detail = f"{reason}: {msg.detail}".strip(": ")
            if unreported:
                detail += f"; {unreported} leaf/leaves not reported, voided as retained"
            values["incident_id"] = open_incident(conn, row, reason, detail, now)
        state = {pb.FINISH_KIND_TAKEN: "completed", pb.FINISH_KIND_CANCEL: "canceled"}
        _set(conn, row.purchase_id, now, actor, state=state.get(msg.kind, "failed"), **values)
        return Outcome(row.purchase_id)

    return core.apply(terminal_id, "cheque_finish", msg.request_id, msg.purchase_id, step)


STALE_AFTER = timedelta(minutes=30)


def sweep_stale(core: ChequeCore, older_than: timedelta = STALE_AFTER) -> list[str]:
    """Open an incident (once) for each purchase not final long after its last change: the
    server never settles it alone (the terminal's journal finishes it), people look. Returns
    the purchases given an incident (their terminals are told once this commits)."""
    opened: list[str] = []
    with write_transaction(core.engine) as conn:
        now = core.clock()
        rows = conn.execute(
            select(cheque_purchases).where(
                cheque_purchases.c.state.not_in(view.FINAL),
                cheque_purchases.c.updated_at < now - older_than,
                cheque_purchases.c.incident_id.is_(None),
            )
        ).all()
        for row in rows:
            incident = open_incident(
                conn, row, "stale", f"purchase {row.state} since {row.updated_at:%H:%M} UTC", now
            )
            conn.execute(
                update(cheque_purchases)
                .where(cheque_purchases.c.purchase_id == row.purchase_id)
                .values(incident_id=incident)
            )
            opened.append(row.purchase_id)
    return opened
