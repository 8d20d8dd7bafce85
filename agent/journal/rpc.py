"""The technician's view of the store as AgentLocal messages (journal verify/show, outbox).

Plain functions over a ``Store``; the servicer runs them off the event loop (a verify walks
every entry). A bad request is an ``InvalidArgument`` naming the field, a store that cannot
be read a ``FailedPrecondition``; the servicer's ``@refusals`` ends the call with either.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from typing import TypeVar

from branchline.common.errors import FailedPrecondition, InvalidArgument
from branchline.v1 import agent_local_pb2 as pb

from .db import JournalError
from .ejournal import Entry
from .jsoncodec import DataError
from .retention import held
from .store import Store

MAX_LIMIT = 1000
R = TypeVar("R")


async def run(open_store: Callable[[], Store], function: Callable[..., R], *args: object) -> R:
    """``function(store, *args)`` on a worker thread; store errors become domain errors."""
    try:
        store = open_store()  # on the loop thread: the lazy open happens once
        return await asyncio.to_thread(function, store, *args)
    except DataError as exc:
        raise InvalidArgument("", str(exc), reason="bad_data") from None
    except (JournalError, sqlite3.Error, OSError) as exc:
        raise FailedPrecondition(f"journal: {exc}", reason="journal_unreadable") from None


def entry_to_pb(entry: Entry) -> pb.JournalEntry:
    return pb.JournalEntry(
        seq=entry.seq,
        at=entry.at,
        kind=entry.kind,
        fields_json=entry.fields_json,
        prev_hash=entry.prev_hash,
        hash=entry.hash,
    )


def _limit(value: int, default: int) -> int:
    if value > MAX_LIMIT:
        raise InvalidArgument("limit", f"at most {MAX_LIMIT}, got {value}", reason="out_of_range")
    return value or default


def verify_journal(store: Store) -> pb.VerifyJournalResult:
    report = store.ejournal.verify()
    result = pb.VerifyJournalResult(
        ok=report.ok,
        entries=report.entries,
        first_bad_seq=report.first_bad_seq or 0,
        reason=report.reason,
    )
    if report.first_bad_seq is not None:
        found = store.ejournal.show(since=report.first_bad_seq, limit=1)
        if found and found[0].seq == report.first_bad_seq:
            result.bad_entry.CopyFrom(entry_to_pb(found[0]))
    return result


def show_journal(store: Store, request: pb.ShowJournalRequest) -> pb.ShowJournalResult:
    entries = store.ejournal.show(request.since or None, _limit(request.limit, 50))
    return pb.ShowJournalResult(entries=[entry_to_pb(e) for e in entries])


def list_outbox(store: Store, request: pb.ListOutboxRequest) -> pb.ListOutboxResult:
    stats = store.outbox.stats()
    kept = held(store.db)
    now = store.db.now()

    def age(at: float | None) -> float:
        return 0.0 if at is None else max(0.0, now - at)

    messages = [
        pb.OutboxMessage(
            seq=m.seq,
            key=m.key,
            kind=m.kind,
            age_seconds=m.age(now),
            attempts=m.attempts,
            last_error=m.last_error,
            txn_id=m.txn_id or "",
            size=len(m.payload),
        )
        for m in store.outbox.pending(_limit(request.limit, 100))
    ]
    return pb.ListOutboxResult(
        messages=messages,
        pending=stats.pending,
        oldest_age_seconds=stats.oldest_age_seconds,
        acknowledged=stats.acknowledged,
        last_seq=stats.last_seq,
        oldest_acknowledged_age_seconds=age(kept.oldest_acknowledged_at),
        finished_transactions=kept.finished_transactions,
        oldest_finished_age_seconds=age(kept.oldest_finished_at),
    )
