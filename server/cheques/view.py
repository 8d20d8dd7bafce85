"""A purchase as the wire record (``ChequePurchase``): rows to proto, amounts to decimal
strings, the ID number masked, the offers computed for the current rules and stock."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import Connection, Row, select

from branchline.server.cheques import rules, stock
from branchline.server.cheques.schema import (
    cheque_accounts,
    cheque_books,
    cheque_leaves,
    cheque_purchasers,
    cheque_purchases,
)
from branchline.server.ledger.money import asset, format_amount, from_minor
from branchline.v1 import cheques_pb2 as pb

FINAL = ("completed", "canceled", "failed", "locked")
# The states whose record carries the offers (what the customer may still order).
OFFERING = ("started", "id_checked", "identified")
STATES = {
    "started": pb.CHEQUE_STATE_STARTED,
    "id_checked": pb.CHEQUE_STATE_ID_CHECKED,
    "identified": pb.CHEQUE_STATE_IDENTIFIED,
    "ordered": pb.CHEQUE_STATE_ORDERED,
    "printing": pb.CHEQUE_STATE_PRINTING,
    "completed": pb.CHEQUE_STATE_COMPLETED,
    "canceled": pb.CHEQUE_STATE_CANCELED,
    "failed": pb.CHEQUE_STATE_FAILED,
    "locked": pb.CHEQUE_STATE_LOCKED,
}
METHODS = {"card_pin": pb.CHEQUE_METHOD_CARD_PIN, "purchase_code": pb.CHEQUE_METHOD_PURCHASE_CODE}
LEAF_STATES = {
    "allocated": pb.LEAF_STATE_ALLOCATED,
    "printed": pb.LEAF_STATE_PRINTED,
    "issued": pb.LEAF_STATE_ISSUED,
    "voided": pb.LEAF_STATE_VOIDED,
    "returned": pb.LEAF_STATE_RETURNED,
}


def money(minor: int, currency: str) -> str:
    of = asset(currency, "currency")
    return format_amount(from_minor(minor, of), of)


def mask_id(id_number: str) -> str:
    if len(id_number) < 10:
        return "*" * len(id_number)
    return id_number[:6] + "*" * (len(id_number) - 10) + id_number[-4:]


def cheque_number(prefix: str, serial: int) -> str:
    return f"{prefix}{serial:08d}"


def offers(
    conn: Connection,
    account: Row,  # type: ignore[type-arg]
    terminal_id: str,
    now: datetime,
) -> list[pb.BookOffer]:
    out = []
    for kind in rules.book_types(conn).values():
        in_stock = stock.books_available(conn, terminal_id, kind)
        bought = rules.books_in_period(conn, account.account_id, kind, now)
        refusal = rules.refusal_for_type(conn, account, kind, 1, now)
        rule = refusal.rule if refusal is not None else ("no_stock" if not in_stock else "")
        out.append(
            pb.BookOffer(
                book_type=kind.book_type,
                name=kind.name,
                leaves_per_book=kind.leaves_per_book,
                printing_cost=money(kind.printing_cost_minor, kind.currency),
                handling_fee=money(kind.handling_fee_minor, kind.currency),
                fee_per_book=money(kind.fee_minor, kind.currency),
                books_left_in_period=max(kind.period_limit - bought, 0),
                books_in_stock=in_stock,
                refused_rule=rule,
            )
        )
    return out


def _books(conn: Connection, purchase_id: str, currency: str) -> list[pb.ChequeBook]:
    leaves: dict[int, list[Row]] = {}  # type: ignore[type-arg]
    for leaf in conn.execute(
        select(cheque_leaves)
        .where(cheque_leaves.c.purchase_id == purchase_id)
        .order_by(cheque_leaves.c.serial, cheque_leaves.c.leaf_id)
    ):
        leaves.setdefault(int(leaf.book_id), []).append(leaf)
    out = []
    for book in conn.execute(
        select(cheque_books)
        .where(cheque_books.c.purchase_id == purchase_id)
        .order_by(cheque_books.c.book_id)
    ):
        rows = leaves.get(int(book.book_id), [])
        out.append(
            pb.ChequeBook(
                book_type=book.book_type,
                prefix=book.prefix,
                first_serial=int(book.first_serial),
                last_serial=int(book.last_serial),
                fee=money(int(book.fee_minor), currency),
                issued_complete=bool(rows) and all(r.state == "issued" for r in rows),
                leaves=[
                    pb.ChequeLeaf(
                        number=cheque_number(r.prefix, int(r.serial)),
                        serial=int(r.serial),
                        state=LEAF_STATES[r.state],
                        void_reason=r.void_reason or "",
                    )
                    for r in rows
                ],
            )
        )
    return out


def _lines(books: list[pb.ChequeBook]) -> list[pb.OrderLine]:
    counts: dict[str, int] = {}
    for book in books:
        counts[book.book_type] = counts.get(book.book_type, 0) + 1
    return [pb.OrderLine(book_type=t, books=n) for t, n in counts.items()]


# long: one record, field by field, as the proto lays it out
def purchase(
    conn: Connection, purchase_id: str, settings: Mapping[str, str], now: datetime
) -> pb.ChequePurchase:
    row = conn.execute(
        select(cheque_purchases).where(cheque_purchases.c.purchase_id == purchase_id)
    ).one()
    account = conn.execute(
        select(cheque_accounts).where(cheque_accounts.c.account_id == row.account_id)
    ).one()
    out = pb.ChequePurchase(
        purchase_id=row.purchase_id,
        terminal_id=row.terminal_id,
        branch=row.branch,
        state=STATES[row.state],
        method=METHODS[row.method],
        account_id=row.account_id,
        account_type=account.account_type,
        currency=row.currency,
        header=pb.PrintHeader(
            company_name=account.company_name,
            account_number=account.account_number,
            bank_name=settings["bank_name"],
            bank_code=settings["bank_code"],
        ),
        purchaser_id=row.purchaser_id or "",
        purchaser_name=row.buyer_name or "",
        id_number_masked=mask_id(row.id_number or ""),
        face_outcome=row.face_outcome,
        face_reason=row.face_reason,
        fee_total=money(int(row.fee_total_minor), row.currency),
        fee_entry_id=int(row.fee_entry_id or 0),
        refund_entry_id=int(row.refund_entry_id or 0),
        fee_refunded=money(int(row.refund_minor), row.currency),
        reason=row.reason,
        incident_id=int(row.incident_id or 0),
        receipt_reference=f"BLCQ:{row.terminal_id}:{row.purchase_id}",
        finished=row.state in FINAL,
    )
    if row.balance_after_minor is not None:
        out.balance_after = money(int(row.balance_after_minor), row.currency)
        out.available_after = money(int(row.available_after_minor), row.currency)
    out.created_at.FromDatetime(row.created_at)
    out.updated_at.FromDatetime(row.updated_at)
    if row.purchaser_id:
        buyer = conn.execute(
            select(cheque_purchasers.c.failed_faces).where(
                cheque_purchasers.c.purchaser_id == row.purchaser_id
            )
        ).first()
        if buyer is not None:  # None: the bank has removed the purchaser since
            limit = int(settings["face_max_attempts"])
            out.face_attempts_left = max(limit - int(buyer.failed_faces), 0)
    if row.state in OFFERING:
        out.offers.extend(offers(conn, account, row.terminal_id, now))
    books = _books(conn, purchase_id, row.currency)
    out.books.extend(books)
    out.lines.extend(_lines(books))
    return out
