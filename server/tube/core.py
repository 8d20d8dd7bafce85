"""What the terminal side and the back office of the tube service share: the database, the
core banking, the clock, and the listeners told about every changed transaction."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from branchline.common.logs import log_event
from branchline.server.applier import after_commit
from branchline.server.ledger.accounts import Account
from branchline.server.ledger.adapter import CoreBanking
from branchline.server.ledger.money import LedgerSettings
from branchline.server.ledger.sessions import CustomerSessions
from branchline.server.storage.engine import connect
from branchline.server.tube import convert, store
from branchline.v1 import tube_pb2 as pb

log = logging.getLogger("branchline.server.tube")

# Told, after the commit, about each transaction whose record changed.
Listener = Callable[[pb.TubeTransaction], None]

DEFAULT_STALE_AFTER = timedelta(minutes=30)


def utcnow() -> datetime:
    return datetime.now(UTC)


class TubeCore:
    def __init__(
        self,
        engine: Engine,
        ledger: CoreBanking,
        sessions: CustomerSessions | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
        notify: Listener | None = None,
        settings: LedgerSettings | None = None,
        stale_after: timedelta = DEFAULT_STALE_AFTER,
    ) -> None:
        self.engine = engine
        self.ledger = ledger
        self.sessions = sessions
        self._clock = clock
        self.settings: LedgerSettings = (
            settings or getattr(ledger, "settings", None) or LedgerSettings()
        )
        self.stale_after = stale_after
        self._listeners: list[Listener] = [notify] if notify is not None else []

    def add_listener(self, listener: Listener) -> None:
        """``listener(txn)`` runs after each committed change, on the changing thread."""
        self._listeners.append(listener)

    def now(self) -> datetime:
        return self._clock()

    def _notify(self, row: Any, txn: pb.TubeTransaction | None = None) -> None:
        """Tell the listeners about ``row`` once its change is durable (at once outside a
        group-commit batch, after the batch's commit inside one). ``txn``: the row as a
        message already (the reply's), so it is not converted twice."""
        if txn is None:
            txn = convert.txn_to_pb(row)
        after_commit(self.engine, lambda: self._tell(txn))

    def _tell(self, txn: pb.TubeTransaction) -> None:
        for listener in self._listeners:
            try:
                listener(txn)
            except Exception:  # a listener's trouble never undoes a committed change
                log.exception("tube listener failed")

    def _read(self, txn_id: str) -> Any:
        with connect(self.engine) as conn:
            return store.load(conn, txn_id)

    def customer_account(self, customer_id: str, account_id: str) -> Account | None:
        return self.ledger.customer_account(customer_id, account_id)

    def _log(self, event: str, row: Any, level: int = logging.INFO, **fields: Any) -> None:
        log_event(
            log,
            event,
            level,
            txn_id=row.txn_id,
            terminal_id=row.terminal_id,
            branch=row.branch,
            kind=row.kind,
            state=row.state,
            **fields,
        )
