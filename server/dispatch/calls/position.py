"""Where a queued call stands: its position in its queue and the estimated wait the terminal
shows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Row

from branchline.server.dispatch.calls import sql
from branchline.server.dispatch.calls.model import (
    DEFAULT_HANDLE_SECONDS,
    QUEUED,
    CallView,
    call_view,
    estimated_wait,
)


def positions(conn: Connection, queues: Iterable[tuple[str, str]]) -> dict[str, tuple[int, int]]:
    """call id -> (position, estimated wait seconds) for the queued calls of these
    (branch, business type) queues."""
    out: dict[str, tuple[int, int]] = {}
    for branch, business_type in queues:
        ids = [
            r.call_id
            for r in conn.execute(
                sql.QUEUE_IDS, {"b_branch": branch, "b_business_type": business_type}
            )
        ]
        if not ids:
            continue
        handle = handle_seconds(conn, branch)
        serving = serving_tellers(conn, branch, business_type)
        for i, call_id in enumerate(ids, start=1):
            out[call_id] = (i, estimated_wait(i, handle, serving))
    return out


def handle_seconds(conn: Connection, branch: str) -> float:
    rows = conn.execute(sql.LAST_HANDLED, {"b_branch": branch}).all()
    spans = [(r.ended_at - r.answered_at).total_seconds() for r in rows]
    return sum(spans) / len(spans) if spans else float(DEFAULT_HANDLE_SECONDS)


def with_position(row: Row[Any], positions: dict[str, tuple[int, int]]) -> CallView:
    position, wait = positions.get(row.call_id, (0, 0))
    return call_view(row, position, wait)


def view(conn: Connection, row: Row[Any]) -> CallView:
    if row.state != QUEUED:
        return call_view(row)
    return with_position(row, positions_of(conn, [row]))


def positions_of(conn: Connection, rows: Sequence[Row[Any]]) -> dict[str, tuple[int, int]]:
    """(position, estimated wait) of these queued calls: one count each over their
    queue's index, however long the queue."""
    out: dict[str, tuple[int, int]] = {}
    handles: dict[str, float] = {}
    for row in rows:
        if row.branch not in handles:
            handles[row.branch] = handle_seconds(conn, row.branch)
        # The calls ahead and the tellers serving the queue, in one query.
        found = conn.execute(
            sql.AHEAD_AND_SERVING,
            {
                "b_branch": row.branch,
                "b_business_type": row.business_type,
                "b_created_at": row.created_at,
                "b_call_id": row.call_id,
            },
        ).one()
        position = int(found.ahead) + 1
        out[row.call_id] = (
            position,
            estimated_wait(position, handles[row.branch], int(found.serving)),
        )
    return out


def serving_tellers(conn: Connection, branch: str, business_type: str) -> int:
    """On-duty tellers of the branch with the skill."""
    return int(
        conn.execute(
            sql.SERVING, {"b_branch": branch, "b_business_type": business_type}
        ).scalar_one()
    )
