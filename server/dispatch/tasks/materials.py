"""Materials of a task (document photos, ID data): uploaded by the origin, stored once per
content, read by those who may see the task. Personal data: every upload and read is
audited (``material_audit``), and the retention (``retention.py``) deletes the bytes once
the task has ended longer ago than the server keeps them."""

from __future__ import annotations

import hashlib

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from branchline.common.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    echo,
)
from branchline.server.dispatch import store
from branchline.server.dispatch import validate as check
from branchline.server.dispatch.model import (
    HELD_STATES,
    OPEN_STATES,
    Actor,
    Material,
)
from branchline.server.dispatch.schema import material_blobs, task_materials
from branchline.server.dispatch.tasks import checks
from branchline.server.dispatch.tasks import material_audit as audit
from branchline.server.dispatch.tasks.core import Core


def _checked_digest(data: bytes, sha256: str, limit: int) -> str:
    """The data's SHA-256, once the data is within ``limit`` bytes and matches ``sha256``
    (when the caller sent one)."""
    if not data:
        raise InvalidArgument("data", "must not be empty", reason="required")
    if len(data) > limit:
        raise InvalidArgument(
            "data",
            f"{len(data)} bytes is more than the {limit}-byte limit for one material",
            reason="too_long",
        )
    digest = hashlib.sha256(data).hexdigest()
    if sha256:
        check.sha256_hex("sha256", sha256)
        if sha256 != digest:
            raise InvalidArgument("sha256", f"does not match the data (its SHA-256 is {digest})")
    return digest


def _store_blob(tx: store.Tx, digest: str, data: bytes) -> None:
    """The content, stored once. On conflict an update that changes nothing, for its row
    lock: the retention, which locks a blob before it deletes one no kept entry refers to,
    then sees this task's entry (or runs first, and this stores the content again)."""
    dialect = postgresql if tx.postgres else sqlite
    blob = dialect.insert(material_blobs).values(
        sha256=digest, size=len(data), data=data, created_at=tx.now
    )
    tx.conn.execute(
        blob.on_conflict_do_update(
            index_elements=["sha256"], set_={"created_at": material_blobs.c.created_at}
        )
    )


@store.retrying
def upload_material(
    core: Core,
    actor: Actor,
    task_id: str,
    name: str,
    content_type: str,
    data: bytes,
    sha256: str = "",
) -> Material:
    """Attach a document photo, ID data, ... to a task: stored once per content."""
    check.ident("task_id", task_id)
    check.material_name("name", name)
    content_type = check.content_type("content_type", content_type)
    digest = _checked_digest(data, sha256, core.max_material_bytes)
    with core.tx() as tx:
        task = checks.task_or_404(tx.conn, task_id, lock=True)
        checks.check_origin(actor, task)
        if task.state not in OPEN_STATES:
            raise FailedPrecondition(f"task {task_id} is {task.state}: no more materials")
        existing = tx.conn.execute(
            select(task_materials).where(
                task_materials.c.task_id == task_id, task_materials.c.name == name
            )
        ).first()
        if existing is not None:
            if existing.sha256 != digest:
                raise AlreadyExists(
                    f"name: task {task_id} already has a material {echo(name)} with other content",
                    field="name",
                )
            return store.material_from_row(existing)
        _store_blob(tx, digest, data)
        tx.conn.execute(
            task_materials.insert().values(
                task_id=task_id,
                name=name,
                content_type=content_type,
                sha256=digest,
                size=len(data),
                uploaded_at=tx.now,
            )
        )
        tx.event(
            "material_added",
            branch=task.target_branch,
            task=task,
            teller_id=task.teller_id if task.state in HELD_STATES else None,
            detail=f"{name} ({content_type}, {len(data)} bytes, sha256 {digest})",
        )
        detail = f"{content_type}, {len(data)} bytes"
        audit.record(tx.conn, tx.now, str(actor), audit.UPLOADED, task_id, name, digest, detail)
    return Material(name, content_type, digest, len(data), tx.now)


@store.retrying
def get_material(core: Core, actor: Actor, task_id: str, sha256: str) -> tuple[Material, bytes]:
    """The material's bytes for ``actor``, audited as viewed in the transaction that reads
    them; refused (and not audited) when the actor may not read the task or the retention
    deleted the bytes."""
    check.ident("task_id", task_id)
    check.sha256_hex("sha256", sha256)
    with core.tx() as tx:
        task = checks.task_or_404(tx.conn, task_id)
        checks.check_read(tx.conn, actor, task)
        row = tx.conn.execute(
            select(task_materials, material_blobs.c.data)
            .select_from(
                task_materials.outerjoin(
                    material_blobs, material_blobs.c.sha256 == task_materials.c.sha256
                )
            )
            .where(task_materials.c.task_id == task_id, task_materials.c.sha256 == sha256)
            .order_by(task_materials.c.name)
            .limit(1)
        ).first()
        if row is None:
            raise NotFound(f"sha256: task {task_id} has no material {sha256}", field="sha256")
        if row.deleted_at is not None or row.data is None:
            when = f" on {row.deleted_at:%Y-%m-%d %H:%M} UTC" if row.deleted_at else ""
            raise FailedPrecondition(
                f"sha256: material {echo(row.name)} of task {task_id} was deleted{when}: "
                "the task ended longer ago than the server keeps materials",
                field="sha256",
                reason="material_deleted",
                metadata={"deleted_at": row.deleted_at.isoformat()} if row.deleted_at else None,
            )
        audit.record(tx.conn, tx.now, str(actor), audit.VIEWED, task_id, row.name, sha256)
    return store.material_from_row(row), bytes(row.data)
