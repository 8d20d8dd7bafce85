"""Recordings in the browser tests: the server's audit of who did what with a recording."""

from __future__ import annotations

import sqlite3

from tests.integration.stack import Stack


def audit_of(stack: Stack, sha: str) -> list[tuple[str, str]]:
    with sqlite3.connect(stack.root / "server.db") as db:
        rows = db.execute(
            "SELECT actor, action FROM recording_audit WHERE sha256 = ? ORDER BY audit_id", (sha,)
        ).fetchall()
    return [(str(a), str(b)) for a, b in rows]
