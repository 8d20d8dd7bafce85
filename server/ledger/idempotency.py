"""Exactly-once answers: the first response to (terminal, request id) is kept and replayed."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select

from branchline.server.ledger.schema import request_results


def stored_response(conn: Connection, terminal_id: str, request_id: str) -> bytes | None:
    row = conn.execute(
        select(request_results.c.response).where(
            request_results.c.terminal_id == terminal_id,
            request_results.c.request_id == request_id,
        )
    ).first()
    return bytes(row.response) if row is not None else None


def store_response(
    conn: Connection, terminal_id: str, request_id: str, kind: str, response: bytes, now: datetime
) -> None:
    """Record the answer inside the caller's transaction, with the effects it describes."""
    conn.execute(
        request_results.insert().values(
            terminal_id=terminal_id,
            request_id=request_id,
            kind=kind,
            response=response,
            created_at=now,
        )
    )
