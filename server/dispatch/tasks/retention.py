"""The retention of task materials: once a task has ended (done or cancelled) longer ago
than the server keeps materials (``--material-retention-days``), their bytes are deleted.
The task keeps each entry (name, type, size, SHA-256) marked with when its bytes went, and
the audit says so; a blob goes once no entry still within its retention refers to it (one
photo uploaded for two tasks stays while the later one is kept).

Safe on every replica at once: each entry is taken by one sweep (``SKIP LOCKED``), and a
blob is deleted under its row lock, which an upload of the same content takes too.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy import Connection, delete, exists, select, update

from branchline.common.logs import log_event
from branchline.server.applier import Applier
from branchline.server.dispatch import store
from branchline.server.dispatch.model import CANCELLED, DONE
from branchline.server.dispatch.schema import material_blobs, task_materials, tasks
from branchline.server.dispatch.tasks import material_audit as audit
from branchline.server.dispatch.tasks.core import Core
from branchline.server.writes import apply_write

log = logging.getLogger("branchline.server.dispatch")

ENDED_STATES = (DONE, CANCELLED)
SWEEP_BATCH = 500


@store.retrying
def sweep_materials(core: Core, limit: int = SWEEP_BATCH) -> list[tuple[str, str]]:
    """Delete the bytes of up to ``limit`` materials of tasks ended before the retention;
    the (task_id, name) of each."""
    retention = core.material_retention
    with core.tx() as tx:
        cutoff = tx.now - retention
        due = tx.conn.execute(
            select(
                task_materials.c.task_id,
                task_materials.c.name,
                task_materials.c.sha256,
                tasks.c.state,
                tasks.c.updated_at,
            )
            .join(tasks, tasks.c.task_id == task_materials.c.task_id)
            .where(
                tasks.c.state.in_(ENDED_STATES),
                tasks.c.updated_at < cutoff,
                task_materials.c.deleted_at.is_(None),
            )
            .order_by(tasks.c.updated_at, task_materials.c.task_id, task_materials.c.name)
            .limit(limit)
            .with_for_update(of=task_materials, skip_locked=True)
        ).all()
        days = f"{retention / timedelta(days=1):g}"
        for row in due:
            tx.conn.execute(
                update(task_materials)
                .where(task_materials.c.task_id == row.task_id, task_materials.c.name == row.name)
                .values(deleted_at=tx.now)
            )
            audit.record(
                tx.conn,
                tx.now,
                audit.RETENTION,
                audit.DELETED,
                row.task_id,
                row.name,
                row.sha256,
                f"task {row.state} {row.updated_at.isoformat()}, retention {days} days",
            )
        for sha256 in sorted({row.sha256 for row in due}):
            _drop_unreferenced(tx.conn, sha256)
    if due:
        log_event(log, "materials_retention", deleted=len(due))
    return [(row.task_id, row.name) for row in due]


def _drop_unreferenced(conn: Connection, sha256: str) -> None:
    """Delete the blob unless an entry whose bytes are kept still refers to it; under the
    blob's row lock, so an upload of this content either comes first (and is seen) or
    after (and stores it again)."""
    locked = conn.execute(
        select(material_blobs.c.sha256).where(material_blobs.c.sha256 == sha256).with_for_update()
    ).first()
    if locked is None:
        return
    kept = exists().where(task_materials.c.sha256 == sha256, task_materials.c.deleted_at.is_(None))
    if not conn.execute(select(kept)).scalar():
        conn.execute(delete(material_blobs).where(material_blobs.c.sha256 == sha256))


async def sweep_forever(core: Core, interval: float, applier: Applier | None = None) -> None:
    """Sweep now and every ``interval`` seconds, a batch at a time until none is due."""
    while True:
        try:
            while len(await apply_write(applier, sweep_materials, core)) == SWEEP_BATCH:
                pass
        except Exception:  # the next round tries again; one bad row must not stop retention
            log.exception("material retention sweep failed")
        await asyncio.sleep(interval)
