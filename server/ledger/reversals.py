"""Reversals: the opposite of a posted entry, posted once.

Any later request to reverse the same entry, under any reference, gets that one reversal
back (``replayed=True``). A bill entry's reversal also moves the bill back (a deposited
bill leaves custody again; a withdrawn one is held again), refused if it has moved since.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, Engine, Row, select, update

from branchline.common.errors import FailedPrecondition, InvalidArgument, NotFound
from branchline.server.ledger import accounts as acc
from branchline.server.ledger.postings import (
    BILL_DEPOSIT,
    BILL_WITHDRAWAL,
    MAX_DESCRIPTION,
    REVERSAL,
    LegSpec,
    Posting,
    check_reference,
    entry_legs,
    load_posting,
    lock_for_posting,
    replay,
    request_hash,
    run_write,
    write_entry,
)
from branchline.server.ledger.requests import ReversalRequest
from branchline.server.ledger.schema import bill_holdings, journal_entries


def reverse(engine: Engine, request: ReversalRequest) -> Posting:
    """Post the opposite of ``request.entry_id`` — once."""
    reference, entry_id, now = request.reference, request.entry_id, request.now
    check_reference(reference, "reversal")
    if isinstance(entry_id, bool) or not isinstance(entry_id, int) or entry_id <= 0:
        raise InvalidArgument("reversal.entry_id", "a positive entry id is required")
    acc.check_identifier(request.reason, "reversal.reason", MAX_DESCRIPTION)
    digest = request_hash({"op": "reverse", "entry": entry_id})

    def first_answer(conn: Connection) -> Posting | None:
        found = replay(conn, reference, digest)
        if found is not None:
            return found
        row = conn.execute(
            select(journal_entries).where(journal_entries.c.reverses_entry_id == entry_id)
        ).first()
        return load_posting(conn, row, replayed=True) if row is not None else None

    def op(conn: Connection) -> Posting:
        first = first_answer(conn)
        if first is not None:
            return first
        original = _reversible(conn, request)
        legs = [
            LegSpec(leg.account_id, leg.currency, -leg.amount_minor)
            for leg in entry_legs(conn, entry_id)
        ]
        locked = lock_for_posting(conn, [leg.account_id for leg in legs], now)
        first = first_answer(conn)
        if first is not None:
            return first
        bill = _bill_of(conn, original)
        posting = write_entry(
            conn,
            locked,
            reference,
            digest,
            REVERSAL,
            f"reversal of entry {entry_id}: {request.reason}",
            legs,
            now,
            field_name="reversal",
            reverses=entry_id,
            rate_version=original.rate_version_id,
        )
        if bill is not None:
            _move_bill_back(conn, bill, original, posting, now)
        return posting

    return run_write(engine, op)


def _reversible(conn: Connection, request: ReversalRequest) -> Row:  # type: ignore[type-arg]
    """The entry to reverse: it exists, is no reversal itself, and (if asked) is this
    terminal's own."""
    entry_id = request.entry_id
    original = conn.execute(
        select(journal_entries).where(journal_entries.c.entry_id == entry_id)
    ).first()
    if original is None:
        raise NotFound(
            f"reversal.entry_id: entry {entry_id} does not exist",
            field="reversal.entry_id",
            reason="unknown_entry",
        )
    if original.reverses_entry_id is not None:
        raise FailedPrecondition(
            f"reversal.entry_id: entry {entry_id} is itself the reversal of entry "
            f"{original.reverses_entry_id}",
            field="reversal.entry_id",
            reason="not_reversible",
        )
    if request.same_terminal and original.terminal_id != request.reference.terminal_id:
        raise FailedPrecondition(
            f"reversal.entry_id: entry {entry_id} was posted by another terminal",
            field="reversal.entry_id",
            reason="not_owner",
        )
    return original


def _bill_of(conn: Connection, original: Row) -> str | None:  # type: ignore[type-arg]
    """The bill a bill entry moved, checked to be where the reversal needs it."""
    if original.kind not in (BILL_DEPOSIT, BILL_WITHDRAWAL):
        return None
    deposit = original.kind == BILL_DEPOSIT
    column = bill_holdings.c.deposit_entry_id if deposit else bill_holdings.c.withdrawal_entry_id
    row = conn.execute(
        select(bill_holdings).where(column == original.entry_id).with_for_update()
    ).first()
    if row is None or row.status != ("held" if deposit else "withdrawn") or row.hold_id:
        raise FailedPrecondition(
            f"reversal.entry_id: the bill of entry {original.entry_id} has moved since",
            field="reversal.entry_id",
            reason="bill_not_held" if deposit else "bill_not_withdrawn",
        )
    return str(row.bill_id)


def _move_bill_back(
    conn: Connection,
    bill_id: str,
    original: Row,  # type: ignore[type-arg]
    posting: Posting,
    now: datetime,
) -> None:
    returned = original.kind == BILL_DEPOSIT
    conn.execute(
        update(bill_holdings)
        .where(bill_holdings.c.bill_id == bill_id)
        .values(
            status="withdrawn" if returned else "held",
            withdrawal_entry_id=posting.entry_id if returned else None,
            updated_at=now,
        )
    )
