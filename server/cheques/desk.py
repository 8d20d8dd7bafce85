"""The staff side of the sale (ChequeDesk): who may (a teller with the back_office skill, for
their own branch), and what they see: stock, purchasers, alerts, the branch display."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, or_, select

from branchline.common.errors import NotFound, PermissionDenied
from branchline.server.auth import TELLER, Principal
from branchline.server.cheques import admin, rules, stock, view
from branchline.server.cheques.schema import (
    cheque_accounts,
    cheque_incidents,
    cheque_purchasers,
    cheque_purchases,
    cheque_stock_ranges,
)
from branchline.server.storage.schema import terminals
from branchline.server.tube import store as tube_store
from branchline.v1 import cheques_pb2 as pb

DESK_RULE = "ChequeDesk is for tellers with the back_office skill"
DESK_SKILL_RULE = "back_office_skill"
OWN_BRANCH_RULE = "own_branch_only"
# A finished purchase stays on the counter screen this long.
DISPLAY_LINGER = timedelta(minutes=2)
ON_SHOW = ("identified", "ordered", "printing")
DISPLAYABLE_PHOTOS = ("jpeg", "png", "bmp")


def desk_branch(conn: Connection, principal: Principal) -> str:
    """The teller's branch; PermissionDenied naming the rule otherwise."""
    if principal.role != TELLER:
        raise PermissionDenied(f"{DESK_RULE}; the caller is {principal}", rule=DESK_SKILL_RULE)
    found = tube_store.teller(conn, principal.name)
    if found is None or not found[1]:
        raise PermissionDenied(f"{DESK_RULE}; {principal} does not have it", rule=DESK_SKILL_RULE)
    return found[0]


def check_terminal(conn: Connection, terminal_id: str, branch: str) -> None:
    found = conn.execute(
        select(terminals.c.branch).where(terminals.c.terminal_id == terminal_id)
    ).scalar()
    if found is None:
        raise NotFound(
            f"no terminal {terminal_id!r}", reason="unknown_terminal", field="terminal_id"
        )
    if found != branch:
        raise PermissionDenied(f"terminal {terminal_id} is of branch {found}", rule=OWN_BRANCH_RULE)


def check_account(conn: Connection, account_id: str, branch: str) -> None:
    found = conn.execute(
        select(cheque_accounts.c.branch).where(cheque_accounts.c.account_id == account_id)
    ).scalar()
    if found is None:
        raise NotFound(
            f"no cheque account {account_id!r}", reason="unknown_account", field="account_id"
        )
    if found != branch:
        raise PermissionDenied(f"account {account_id} is of branch {found}", rule=OWN_BRANCH_RULE)


def check_purchaser(conn: Connection, purchaser_id: str, branch: str) -> None:
    found = conn.execute(
        select(cheque_purchasers.c.account_id).where(
            cheque_purchasers.c.purchaser_id == purchaser_id
        )
    ).scalar()
    if found is None:
        raise NotFound(
            f"no purchaser {purchaser_id!r}", reason="unknown_purchaser", field="purchaser_id"
        )
    check_account(conn, str(found), branch)


def offering(conn: Connection, terminal_id: str) -> list[str]:
    """The terminal's purchases whose offers follow its stock (told when it changes)."""
    return list(
        conn.execute(
            select(cheque_purchases.c.purchase_id).where(
                cheque_purchases.c.terminal_id == terminal_id,
                cheque_purchases.c.state.in_(view.OFFERING),
            )
        ).scalars()
    )


def buying(conn: Connection, purchaser_id: str) -> list[str]:
    """The purchaser's unfinished purchases (their face attempts left follow the purchaser)."""
    return list(
        conn.execute(
            select(cheque_purchases.c.purchase_id).where(
                cheque_purchases.c.purchaser_id == purchaser_id,
                cheque_purchases.c.state.not_in(view.FINAL),
            )
        ).scalars()
    )


def stock_range(conn: Connection, row: Any) -> pb.StockRange:
    kinds = rules.book_types(conn)
    kind = kinds.get(row.book_type)
    free = 0
    if kind is not None and row.unloaded_at is None:
        used = stock._used(conn, kind.prefix, int(row.first_serial), int(row.last_serial))
        free = len(
            stock._free_books(
                used, int(row.first_serial), int(row.last_serial), kind.leaves_per_book, 10_000
            )
        )
    out = pb.StockRange(
        range_id=int(row.range_id),
        terminal_id=row.terminal_id,
        book_type=row.book_type,
        prefix=kind.prefix if kind else "",
        first_serial=int(row.first_serial),
        last_serial=int(row.last_serial),
        books_free=free,
        loaded_by=row.loaded_by,
        unloaded=row.unloaded_at is not None,
    )
    out.loaded_at.FromDatetime(row.loaded_at)
    return out


def list_stock(conn: Connection, branch: str) -> pb.StockList:
    ids = [
        r.terminal_id
        for r in conn.execute(
            select(terminals.c.terminal_id)
            .where(terminals.c.branch == branch)
            .order_by(terminals.c.terminal_id)
        )
    ]
    rows = conn.execute(
        select(cheque_stock_ranges)
        .where(
            cheque_stock_ranges.c.terminal_id.in_(ids), cheque_stock_ranges.c.unloaded_at.is_(None)
        )
        .order_by(cheque_stock_ranges.c.terminal_id, cheque_stock_ranges.c.first_serial)
    ).all()
    out = pb.StockList(terminal_ids=ids, ranges=[stock_range(conn, r) for r in rows])
    for kind in rules.book_types(conn).values():
        out.book_types.add(
            book_type=kind.book_type, name=kind.name, leaves_per_book=kind.leaves_per_book
        )
    return out


def purchaser(row: Any, company: str) -> pb.Purchaser:
    out = pb.Purchaser(
        purchaser_id=row.purchaser_id,
        account_id=row.account_id,
        company_name=company,
        name=row.name,
        id_number_masked=view.mask_id(row.id_number),
        enrolled=row.face_descriptor is not None,
        face_sha256=row.face_sha256 or "",
        enrolled_by=row.enrolled_by or "",
        locked=bool(row.locked),
        failed_faces=int(row.failed_faces),
    )
    if row.enrolled_at is not None:
        out.enrolled_at.FromDatetime(row.enrolled_at)
    return out


def list_purchasers(conn: Connection, branch: str, purchaser_id: str = "") -> list[pb.Purchaser]:
    query = (
        select(cheque_purchasers, cheque_accounts.c.company_name)
        .join(cheque_accounts, cheque_accounts.c.account_id == cheque_purchasers.c.account_id)
        .where(cheque_accounts.c.branch == branch)
        .order_by(cheque_accounts.c.company_name, cheque_purchasers.c.name)
    )
    if purchaser_id:
        query = query.where(cheque_purchasers.c.purchaser_id == purchaser_id)
    return [purchaser(r, r.company_name) for r in conn.execute(query)]


def alert(row: Any) -> pb.Alert:
    out = pb.Alert(
        incident_id=int(row.incident_id),
        terminal_id=row.terminal_id,
        purchase_id=row.purchase_id,
        kind=row.kind,
        detail=row.detail,
        resolved_by=row.resolved_by or "",
        resolution=row.resolution or "",
    )
    out.opened_at.FromDatetime(row.opened_at)
    if row.resolved_at is not None:
        out.resolved_at.FromDatetime(row.resolved_at)
    return out


def list_alerts(conn: Connection, branch: str, include_resolved: bool) -> list[pb.Alert]:
    query = select(cheque_incidents).where(cheque_incidents.c.branch == branch)
    if not include_resolved:
        query = query.where(cheque_incidents.c.resolved_at.is_(None))
    return [alert(r) for r in conn.execute(query.order_by(cheque_incidents.c.incident_id))]


def _on_show(branch: str, now: datetime) -> Any:
    """The branch's purchases on its display: identified and later, finished ones for a while."""
    return and_(
        cheque_purchases.c.branch == branch,
        cheque_purchases.c.face_outcome == "match",
        or_(
            cheque_purchases.c.state.in_(ON_SHOW),
            and_(
                cheque_purchases.c.state.in_(("completed", "failed", "canceled")),
                cheque_purchases.c.updated_at >= now - DISPLAY_LINGER,
            ),
        ),
    )


def display(conn: Connection, branch: str, now: datetime) -> pb.BranchDisplay:
    """The branch's purchases on show; a photo by its format only (``display_photo``)."""
    rows = conn.execute(
        select(cheque_purchases, cheque_accounts)
        .join(cheque_accounts, cheque_accounts.c.account_id == cheque_purchases.c.account_id)
        .where(_on_show(branch, now))
        .order_by(cheque_purchases.c.created_at)
    ).all()
    settings = rules.config(conn)
    out = pb.BranchDisplay(branch=branch, open_alerts=len(list_alerts(conn, branch, False)))
    for row in rows:
        record = view.purchase(conn, row.purchase_id, settings, now)
        shown = out.purchases.add(
            purchase_id=row.purchase_id,
            terminal_id=row.terminal_id,
            state=record.state,
            buyer_name=row.buyer_name or "",
            id_number_masked=view.mask_id(row.id_number or ""),
            company_name=row.company_name,
            account_number=row.account_number,
            contact_name=row.contact_name,
            contact_phone=row.contact_phone,
            fee_total=record.fee_total,
            fee_refunded=record.fee_refunded,
        )
        if row.id_photo_format in DISPLAYABLE_PHOTOS and row.id_photo:
            shown.photo_format = row.id_photo_format
        shown.lines.extend(record.lines)
        shown.books.extend(record.books)
        shown.updated_at.CopyFrom(record.updated_at)
    return out


def display_photo(
    conn: Connection, branch: str, purchase_id: str, actor: str, now: datetime
) -> pb.DisplayPhoto:
    """The ID card photo of a purchase on the branch's display now, audited as handed out to
    ``actor`` (in the caller's write transaction); NotFound naming ``purchase_id`` for a
    purchase not on it (another branch's, finished a while ago, unknown) or without a photo
    (none sent, not displayable, or swept after the retention)."""
    row = conn.execute(
        select(
            cheque_purchases.c.id_photo,
            cheque_purchases.c.id_photo_format,
        ).where(cheque_purchases.c.purchase_id == purchase_id, _on_show(branch, now))
    ).first()
    if row is None:
        raise NotFound(
            f"purchase_id: purchase {purchase_id!r} is not on the display of branch {branch}",
            reason="not_on_display",
            field="purchase_id",
        )
    if row.id_photo_format not in DISPLAYABLE_PHOTOS or not row.id_photo:
        raise NotFound(
            f"purchase_id: purchase {purchase_id} has no ID card photo to show",
            reason="no_photo",
            field="purchase_id",
        )
    photo = bytes(row.id_photo)
    detail = {
        "format": row.id_photo_format,
        "bytes": len(photo),
        "sha256": hashlib.sha256(photo).hexdigest(),
    }
    admin.audit(conn, actor, "display_photo", purchase_id, detail, now)
    return pb.DisplayPhoto(purchase_id=purchase_id, photo_format=row.id_photo_format, photo=photo)
