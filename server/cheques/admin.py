"""What the bank's staff do to the sale's data, each audited: the rules (settings, book
types, account types), accounts and their authorised purchasers, face enrolment, purchase
codes, cassette stock, unlocking a purchaser and resolving an incident.

Used by the ``branchline-server cheques`` CLI, the ChequeDesk API (the console) and the demo.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, delete, select, update

from branchline.common.errors import FailedPrecondition, InvalidArgument, NotFound
from branchline.server.cheques import codes, rules, stock
from branchline.server.cheques.schema import (
    cheque_accounts,
    cheque_audit,
    cheque_book_types,
    cheque_config,
    cheque_incidents,
    cheque_purchasers,
    cheque_type_rules,
)
from branchline.server.faces.matcher import FaceMatcher
from branchline.server.faces.settings import FaceSettings
from branchline.server.faces.verify import enrol
from branchline.server.storage import write_transaction

_CODE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_PREFIX = re.compile(r"^[0-9A-Z]{0,6}$")
CONFIG_KEYS = (*rules.DEFAULTS, "face.threshold", "face.min_liveness_score", "face.min_sharpness")


def audit(
    conn: Connection, actor: str, action: str, subject: str, detail: Any, now: datetime
) -> None:
    conn.execute(
        cheque_audit.insert().values(
            actor=actor[:200],
            action=action,
            subject=subject[:128],
            detail=json.dumps(detail, sort_keys=True, default=str),
            at=now,
        )
    )


def _int(field: str, value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        raise InvalidArgument(field, f"must be an integer, got {str(value)[:20]!r}") from None


def _code(field: str, value: str) -> str:
    if not _CODE.match(value):
        raise InvalidArgument(field, "lower-case letters, digits and _, 1 to 32, a letter first")
    return value


def set_config(engine: Engine, key: str, value: str, actor: str, now: datetime) -> None:
    if key not in CONFIG_KEYS:
        raise InvalidArgument("key", f"unknown setting; known: {', '.join(CONFIG_KEYS)}")
    if len(value) > 200:
        raise InvalidArgument("value", "at most 200 characters")
    with write_transaction(engine) as conn:
        conn.execute(delete(cheque_config).where(cheque_config.c.key == key))
        conn.execute(cheque_config.insert().values(key=key, value=value))
        audit(conn, actor, "set_config", key, {"value": value}, now)


# long: one row's fields checked one by one, each refusal naming its field
def put_book_type(engine: Engine, values: dict[str, Any], actor: str, now: datetime) -> None:
    """Create or replace a book type (fees in minor units)."""
    book_type = _code("book_type", str(values.get("book_type", "")))
    name = str(values.get("name", "")).strip()
    if not 1 <= len(name) <= 80:
        raise InvalidArgument("name", "1 to 80 characters")
    prefix = str(values.get("prefix", ""))
    if not _PREFIX.match(prefix):
        raise InvalidArgument("prefix", "0 to 6 digits or capital letters")
    numbers = {
        key: _int(key, values.get(key, default))
        for key, default in (
            ("leaves_per_book", 25),
            ("printing_cost_minor", 0),
            ("handling_fee_minor", 0),
            ("period_limit", 10),
        )
    }
    row: dict[str, Any] = {
        "book_type": book_type,
        "name": name,
        "prefix": prefix,
        "currency": str(values.get("currency", "CNY")),
        "period": str(values.get("period", "month")),
        **numbers,
        "on_sale": bool(values.get("on_sale", True)),
    }
    if not 1 <= numbers["leaves_per_book"] <= 100:
        raise InvalidArgument("leaves_per_book", "1 to 100")
    if row["period"] not in rules.PERIODS:
        raise InvalidArgument("period", f"one of {', '.join(rules.PERIODS)}")
    for key in ("printing_cost_minor", "handling_fee_minor", "period_limit"):
        if numbers[key] < 0:
            raise InvalidArgument(key, "must not be negative")
    with write_transaction(engine) as conn:
        conn.execute(delete(cheque_book_types).where(cheque_book_types.c.book_type == book_type))
        conn.execute(cheque_book_types.insert().values(**row))
        audit(conn, actor, "put_book_type", book_type, row, now)


def allow_type(
    engine: Engine, account_type: str, book_type: str, allowed: bool, actor: str, now: datetime
) -> None:
    _code("account_type", account_type)
    with write_transaction(engine) as conn:
        conn.execute(
            delete(cheque_type_rules).where(
                cheque_type_rules.c.account_type == account_type,
                cheque_type_rules.c.book_type == book_type,
            )
        )
        if allowed:
            conn.execute(
                cheque_type_rules.insert().values(account_type=account_type, book_type=book_type)
            )
        audit(conn, actor, "allow_type", f"{account_type}:{book_type}", {"allowed": allowed}, now)


def put_account(engine: Engine, values: dict[str, Any], actor: str, now: datetime) -> None:
    """Register (or update) a company account for cheque sale."""
    number = str(values.get("account_number", ""))
    if not number.isdigit() or not 6 <= len(number) <= 32:
        raise InvalidArgument("account_number", "6 to 32 digits")
    status = str(values.get("status", "active"))
    if status not in rules.ACCOUNT_STATES:
        raise InvalidArgument("status", f"one of {', '.join(rules.ACCOUNT_STATES)}")
    account_id = str(values.get("account_id", ""))
    if not account_id:
        raise InvalidArgument("account_id", "required")
    row = {
        "account_id": account_id,
        "account_number": number,
        "company_name": str(values.get("company_name", ""))[:60],
        "account_type": _code("account_type", str(values.get("account_type", "general"))),
        "status": status,
        "stop_sale": bool(values.get("stop_sale", False)),
        "branch": str(values.get("branch", "")),
        "contact_name": str(values.get("contact_name", ""))[:60],
        "contact_phone": str(values.get("contact_phone", ""))[:32],
    }
    with write_transaction(engine) as conn:
        found = conn.execute(
            select(cheque_accounts.c.code_failures).where(
                cheque_accounts.c.account_id == row["account_id"]
            )
        ).first()
        conn.execute(
            delete(cheque_accounts).where(cheque_accounts.c.account_id == row["account_id"])
        )
        conn.execute(cheque_accounts.insert().values(code_failures=found[0] if found else 0, **row))
        audit(conn, actor, "put_account", account_id, row, now)


def set_account_status(
    engine: Engine, account_id: str, status: str, stop_sale: bool | None, actor: str, now: datetime
) -> None:
    if status not in rules.ACCOUNT_STATES:
        raise InvalidArgument("status", f"one of {', '.join(rules.ACCOUNT_STATES)}")
    values: dict[str, Any] = {"status": status}
    if stop_sale is not None:
        values["stop_sale"] = stop_sale
    with write_transaction(engine) as conn:
        done = conn.execute(
            update(cheque_accounts)
            .where(cheque_accounts.c.account_id == account_id)
            .values(**values)
        )
        if done.rowcount != 1:
            raise NotFound(f"no cheque account {account_id!r}", reason="unknown_account")
        audit(conn, actor, "account_status", account_id, values, now)


def add_purchaser(
    engine: Engine,
    purchaser_id: str,
    account_id: str,
    id_number: str,
    name: str,
    actor: str,
    now: datetime,
) -> None:
    if len(id_number) != 18:
        raise InvalidArgument("id_number", "18 characters")
    with write_transaction(engine) as conn:
        conn.execute(
            cheque_purchasers.insert().values(
                purchaser_id=purchaser_id,
                account_id=account_id,
                id_number=id_number,
                name=name[:60],
                failed_faces=0,
                locked=False,
            )
        )
        audit(
            conn,
            actor,
            "add_purchaser",
            purchaser_id,
            {"account_id": account_id, "name": name},
            now,
        )


def enrol_face(
    engine: Engine,
    matcher: FaceMatcher,
    settings: FaceSettings,
    purchaser_id: str,
    image: bytes,
    actor: str,
    now: datetime,
) -> str:
    """Enrol or replace a purchaser's face image; one clear face or InvalidArgument. Returns
    the image's SHA-256 (kept in the audit, never the image)."""
    enrolment = enrol(matcher, image, settings)
    with write_transaction(engine) as conn:
        done = conn.execute(
            update(cheque_purchasers)
            .where(cheque_purchasers.c.purchaser_id == purchaser_id)
            .values(
                face_image=image,
                face_descriptor=json.dumps([float(v) for v in enrolment.descriptor]),
                face_sha256=enrolment.image_sha256,
                face_backend=enrolment.backend,
                enrolled_at=now,
                enrolled_by=actor,
            )
        )
        if done.rowcount != 1:
            raise NotFound(f"no purchaser {purchaser_id!r}", reason="unknown_purchaser")
        audit(
            conn,
            actor,
            "enrol_face",
            purchaser_id,
            {"sha256": enrolment.image_sha256, "backend": enrolment.backend},
            now,
        )
    return enrolment.image_sha256


def remove_purchaser(engine: Engine, purchaser_id: str, actor: str, now: datetime) -> bool:
    """The purchaser no longer buys for the account (left the company, authority withdrawn):
    the row goes, and with it the enrolled face image and descriptor (personal data kept only
    while the person may buy). Purchases keep their own copy of the buyer's name and ID
    number; the audit keeps who was removed, by whom, and the face's SHA-256, never the face.
    Whether a face was enrolled."""
    with write_transaction(engine) as conn:
        row = conn.execute(
            select(cheque_purchasers).where(cheque_purchasers.c.purchaser_id == purchaser_id)
        ).first()
        if row is None:
            raise NotFound(f"no purchaser {purchaser_id!r}", reason="unknown_purchaser", field="id")
        conn.execute(
            delete(cheque_purchasers).where(cheque_purchasers.c.purchaser_id == purchaser_id)
        )
        detail = {"account_id": row.account_id, "name": row.name, "face_sha256": row.face_sha256}
        audit(conn, actor, "remove_purchaser", purchaser_id, detail, now)
    return row.face_sha256 is not None


def unlock_purchaser(engine: Engine, purchaser_id: str, actor: str, now: datetime) -> None:
    with write_transaction(engine) as conn:
        done = conn.execute(
            update(cheque_purchasers)
            .where(cheque_purchasers.c.purchaser_id == purchaser_id)
            .values(locked=False, locked_at=None, failed_faces=0)
        )
        if done.rowcount != 1:
            raise NotFound(f"no purchaser {purchaser_id!r}", reason="unknown_purchaser")
        audit(conn, actor, "unlock_purchaser", purchaser_id, {}, now)


def issue_code(engine: Engine, account_id: str, actor: str, now: datetime) -> tuple[str, datetime]:
    """A one-time purchase code for the account: (the code, shown once; its expiry)."""
    with write_transaction(engine) as conn:
        if (
            conn.execute(
                select(cheque_accounts.c.account_id).where(
                    cheque_accounts.c.account_id == account_id
                )
            ).first()
            is None
        ):
            raise NotFound(f"no cheque account {account_id!r}", reason="unknown_account")
        hours = int(rules.config(conn)["code_ttl_hours"])
        code_id, code, expires = codes.issue_code(
            conn, account_id, actor, now, timedelta(hours=hours)
        )
        audit(conn, actor, "issue_code", account_id, {"code_id": code_id, "expires": expires}, now)
    return code, expires


def load_stock(
    engine: Engine,
    terminal_id: str,
    book_type: str,
    first: int,
    last: int,
    actor: str,
    now: datetime,
) -> int:
    with write_transaction(engine) as conn:
        range_id = stock.load_range(conn, terminal_id, book_type, first, last, actor, now)
        audit(
            conn,
            actor,
            "load_stock",
            terminal_id,
            {"range_id": range_id, "book_type": book_type, "first": first, "last": last},
            now,
        )
    return range_id


def unload_stock(engine: Engine, range_id: int, actor: str, now: datetime) -> None:
    with write_transaction(engine) as conn:
        stock.unload_range(conn, range_id, now)
        audit(conn, actor, "unload_stock", str(range_id), {}, now)


def resolve_incident(
    engine: Engine, incident_id: int, resolution: str, actor: str, now: datetime
) -> None:
    if not resolution.strip():
        raise InvalidArgument("resolution", "say what was done")
    with write_transaction(engine) as conn:
        done = conn.execute(
            update(cheque_incidents)
            .where(
                cheque_incidents.c.incident_id == incident_id,
                cheque_incidents.c.resolved_at.is_(None),
            )
            .values(resolved_at=now, resolved_by=actor, resolution=resolution[:2000])
        )
        if done.rowcount != 1:
            raise FailedPrecondition(f"no open incident {incident_id}", reason="unknown_incident")
        audit(conn, actor, "resolve_incident", str(incident_id), {"resolution": resolution}, now)
