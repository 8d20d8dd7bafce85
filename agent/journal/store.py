"""The agent's journal store: one ``journal.db`` with its write-ahead journal, outbox and
electronic journal, opened together."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .db import Database
from .ejournal import EJournal
from .outbox import Outbox
from .txjournal import StateMachine, TxJournal

DB_NAME = "journal.db"
KEY_NAME = "journal.key"


class Store:
    def __init__(
        self,
        state_dir: Path,
        terminal_id: str,
        machines: Mapping[str, StateMachine] | None = None,
        *,
        now: Callable[[], float] = time.time,
    ) -> None:
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
        self.db = Database(state_dir / DB_NAME, now=now)
        self.txjournal = TxJournal(self.db, terminal_id, dict(machines or {}))
        self.outbox = Outbox(self.db, terminal_id)
        self.ejournal = EJournal(self.db, state_dir / KEY_NAME)

    def record_step_and_enqueue(
        self,
        txn_id: str,
        step: str,
        data: Mapping[str, Any] | None,
        kind: str,
        payload: bytes,
    ) -> tuple[int, int, str]:
        """Journal a step and queue its message in one commit: ``(step number, seq, key)``."""
        with self.db.transaction() as conn:
            number = self.txjournal.record_step_in(conn, txn_id, step, data)
            seq, key = self.outbox.enqueue_in(conn, kind, payload, txn_id=txn_id)
            return number, seq, key

    def close(self) -> None:
        self.db.close()
