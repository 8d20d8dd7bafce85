"""Look a transaction up by the reference printed on its receipt (``BLTX:<terminal>:<txn>``).

The ledger keys every money call by ``Reference(terminal_id, request_id)`` and the terminal's
transaction engine names its calls ``<txn_id>:<step>``, so the transaction's entries (and
withdrawal holds) are those of that terminal whose request id starts with ``<txn_id>:``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, select

from branchline.common.txref import TxReference
from branchline.server.ledger.holds import Hold, hold_from_row
from branchline.server.ledger.postings import Posting, load_posting
from branchline.server.ledger.schema import holds, journal_entries
from branchline.server.storage.engine import connect


@dataclass(frozen=True)
class TransactionRecord:
    reference: TxReference
    entries: tuple[Posting, ...]  # oldest first
    holds: tuple[Hold, ...]  # oldest first


def lookup_transaction(engine: Engine, reference: TxReference) -> TransactionRecord:
    prefix = reference.request_prefix
    with connect(engine) as conn:
        rows = conn.execute(
            select(journal_entries)
            .where(journal_entries.c.terminal_id == reference.terminal_id)
            .where(journal_entries.c.request_id.startswith(prefix, autoescape=True))
            .order_by(journal_entries.c.entry_id)
        ).all()
        entries = tuple(load_posting(conn, row, replayed=False) for row in rows)
        hold_rows = conn.execute(
            select(holds)
            .where(holds.c.terminal_id == reference.terminal_id)
            .where(holds.c.request_id.startswith(prefix, autoescape=True))
            .order_by(holds.c.created_at, holds.c.hold_id)
        ).all()
    return TransactionRecord(reference, entries, tuple(hold_from_row(r) for r in hold_rows))
