"""Device status history: each change of a device's status or detail, recorded by the fleet
registry in the same transaction as the change, and read newest first for operations'
terminal detail (``Fleet.DeviceHistory``).

Retention: the last ``KEEP_PER_DEVICE`` changes of each device are kept; older ones are
deleted as new ones are written, so a flapping device cannot grow the table without bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, delete, select

from branchline.server.storage.schema import device_status_history as history

KEEP_PER_DEVICE = 200
MAX_LIMIT = 500


@dataclass(frozen=True)
class StatusChange:
    change_id: int
    terminal_id: str
    device: str
    status: str
    detail: str
    at: datetime


def record(
    conn: Connection, terminal_id: str, device: str, status: str, detail: str, at: datetime
) -> None:
    """Append one change (inside the caller's transaction) and trim the device's oldest."""
    conn.execute(
        history.insert().values(
            terminal_id=terminal_id, device=device, status=status, detail=detail, at=at
        )
    )
    oldest_kept = conn.execute(
        select(history.c.id)
        .where(history.c.terminal_id == terminal_id, history.c.device == device)
        .order_by(history.c.id.desc())
        .offset(KEEP_PER_DEVICE - 1)
        .limit(1)
    ).scalar_one_or_none()
    if oldest_kept is not None:
        conn.execute(
            delete(history).where(
                history.c.terminal_id == terminal_id,
                history.c.device == device,
                history.c.id < oldest_kept,
            )
        )


def changes(engine: Engine, terminal_id: str, limit: int) -> list[StatusChange]:
    """The terminal's last ``limit`` device status changes, newest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(history)
            .where(history.c.terminal_id == terminal_id)
            .order_by(history.c.id.desc())
            .limit(limit)
        ).all()
    return [
        StatusChange(int(r.id), r.terminal_id, r.device, r.status, r.detail, r.at) for r in rows
    ]
