"""The audit of task materials (``material_audit``): who uploaded, read or deleted which
material of which task, and when, as ``recording_audit`` is for recordings. Written in the
transaction that hands out or changes the bytes, so no client can read one unaudited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, insert, select

from branchline.common.errors import MAX_TEXT, InvalidArgument
from branchline.server.dispatch import validate as check
from branchline.server.dispatch.schema import material_audit

UPLOADED = "uploaded"
VIEWED = "viewed"
DELETED = "deleted"
# The actor of the retention sweep's deletions.
RETENTION = "retention"
MAX_LIST = 10000


@dataclass(frozen=True)
class AuditEntry:
    audit_id: int
    at: datetime
    actor: str
    action: str
    task_id: str
    name: str
    sha256: str
    detail: str


def record(
    conn: Connection,
    at: datetime,
    actor: str,
    action: str,
    task_id: str,
    name: str,
    sha256: str,
    detail: str = "",
) -> None:
    conn.execute(
        insert(material_audit).values(
            at=at,
            actor=actor[:200],
            action=action,
            task_id=task_id,
            name=name,
            sha256=sha256,
            detail=detail[:MAX_TEXT],
        )
    )


def audit_of(
    engine: Engine, *, task_id: str = "", sha256: str = "", limit: int = 1000
) -> list[AuditEntry]:
    """The audit of one task's materials, of one content, or (neither given) the latest
    entries; oldest first."""
    if task_id:
        check.ident("task_id", task_id)
    if sha256:
        check.sha256_hex("sha256", sha256)
    if not 1 <= limit <= MAX_LIST:
        raise InvalidArgument("limit", f"must be 1 to {MAX_LIST}, got {limit}")
    query = select(material_audit)
    if task_id:
        query = query.where(material_audit.c.task_id == task_id)
    if sha256:
        query = query.where(material_audit.c.sha256 == sha256)
    with engine.connect() as conn:
        newest = conn.execute(query.order_by(material_audit.c.audit_id.desc()).limit(limit)).all()
    return [
        AuditEntry(
            audit_id=int(row.audit_id),
            at=row.at,
            actor=row.actor,
            action=row.action,
            task_id=row.task_id,
            name=row.name,
            sha256=row.sha256,
            detail=row.detail,
        )
        for row in reversed(newest)
    ]
