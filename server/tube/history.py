"""The back office's history search (TubeDesk.SearchHistory): a branch's tube transactions,
final ones included, newest first, narrowed by date, terminal, customer or receipt reference.

The caller's scope (back_office skill, own branch) is checked before this runs; here the
branch is a given and every filter is checked and named when it is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Engine, select

from branchline.common.errors import MAX_ID, InvalidArgument, check_text, echo
from branchline.common.txref import BadReference, parse_reference
from branchline.server.storage.engine import connect
from branchline.server.tube import convert
from branchline.server.tube.schema import tube_transactions
from branchline.v1 import tube_pb2 as pb

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


@dataclass(frozen=True)
class HistoryQuery:
    start: datetime | None  # inclusive
    end: datetime | None  # exclusive (the day after to_date)
    terminal_id: str
    customer_id: str
    txn_id: str
    limit: int


def _day(field: str, text: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(check_text(field, text, max_len=10))
    except ValueError:
        raise InvalidArgument(field, f"expected YYYY-MM-DD, got {echo(text)}") from None


def parse_query(request: pb.HistoryRequest) -> HistoryQuery:
    """The request's filters, checked; InvalidArgument naming the field otherwise."""
    first = _day("from_date", request.from_date)
    last = _day("to_date", request.to_date)
    if first and last and first > last:
        raise InvalidArgument("to_date", f"{last} is before from_date {first}")
    if request.limit > MAX_LIMIT:
        raise InvalidArgument("limit", f"at most {MAX_LIMIT}, got {request.limit}")
    terminal_id = check_text("terminal_id", request.terminal_id, max_len=128, required=False)
    customer_id = check_text("customer_id", request.customer_id, max_len=MAX_ID, required=False)
    txn_id = ""
    if request.reference.strip():
        try:
            ref = parse_reference(request.reference)
        except BadReference as exc:
            raise InvalidArgument("reference", str(exc).removeprefix("reference: ")) from None
        if terminal_id and terminal_id != ref.terminal_id:
            raise InvalidArgument(
                "terminal_id",
                f"{echo(terminal_id)} is not the reference's terminal {echo(ref.terminal_id)}",
            )
        terminal_id, txn_id = ref.terminal_id, ref.txn_id
    return HistoryQuery(
        start=datetime.combine(first, time(), UTC) if first else None,
        end=datetime.combine(last + timedelta(days=1), time(), UTC) if last else None,
        terminal_id=terminal_id,
        customer_id=customer_id,
        txn_id=txn_id,
        limit=request.limit or DEFAULT_LIMIT,
    )


def search(engine: Engine, branch: str, query: HistoryQuery) -> list[pb.TubeTransaction]:
    """The branch's transactions matching every filter given, newest first."""
    t = tube_transactions.c
    where: list[Any] = [t.branch == branch]
    if query.start is not None:
        where.append(t.created_at >= query.start)
    if query.end is not None:
        where.append(t.created_at < query.end)
    if query.terminal_id:
        where.append(t.terminal_id == query.terminal_id)
    if query.customer_id:
        where.append(t.customer_id == query.customer_id)
    if query.txn_id:
        where.append(t.txn_id == query.txn_id)
    statement = (
        select(tube_transactions)
        .where(*where)
        .order_by(t.created_at.desc(), t.txn_id.desc())
        .limit(query.limit)
    )
    with connect(engine) as conn:
        return [convert.txn_to_pb(row) for row in conn.execute(statement)]
