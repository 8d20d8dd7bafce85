"""Cassette stock: the serial ranges staff loaded into each terminal, and taking books from
them. A serial is in stock when it lies in a loaded range of the terminal and no live leaf
(one not ``returned``) holds it. A book is ``leaves_per_book`` contiguous free serials
inside one range, lowest first — the order the cassette feeds them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, and_, select

from branchline.common.errors import FailedPrecondition, InvalidArgument
from branchline.server.cheques.rules import BookType, book_types
from branchline.server.cheques.schema import cheque_leaves, cheque_stock_ranges

MAX_SERIAL = 99_999_999


@dataclass(frozen=True)
class Range:
    range_id: int
    first: int
    last: int


def loaded_ranges(conn: Connection, terminal_id: str, book_type: str) -> list[Range]:
    rows = conn.execute(
        select(cheque_stock_ranges)
        .where(
            cheque_stock_ranges.c.terminal_id == terminal_id,
            cheque_stock_ranges.c.book_type == book_type,
            cheque_stock_ranges.c.unloaded_at.is_(None),
        )
        .order_by(cheque_stock_ranges.c.first_serial)
    )
    return [Range(int(r.range_id), int(r.first_serial), int(r.last_serial)) for r in rows]


def _used(conn: Connection, prefix: str, first: int, last: int) -> list[int]:
    rows = conn.execute(
        select(cheque_leaves.c.serial)
        .where(
            cheque_leaves.c.prefix == prefix,
            cheque_leaves.c.serial.between(first, last),
            cheque_leaves.c.state != "returned",
        )
        .order_by(cheque_leaves.c.serial)
    )
    return [int(r.serial) for r in rows]


def _free_books(used: list[int], first: int, last: int, size: int, wanted: int) -> list[int]:
    """First serials of up to ``wanted`` books of ``size`` free serials in [first, last]."""
    taken = set(used)
    starts: list[int] = []
    start = first
    while start + size - 1 <= last and len(starts) < wanted:
        clash = [s for s in range(start, start + size) if s in taken]
        if clash:
            start = max(clash) + 1
            continue
        starts.append(start)
        start += size
    return starts


def books_available(conn: Connection, terminal_id: str, kind: BookType, cap: int = 1000) -> int:
    count = 0
    for r in loaded_ranges(conn, terminal_id, kind.book_type):
        used = _used(conn, kind.prefix, r.first, r.last)
        count += len(_free_books(used, r.first, r.last, kind.leaves_per_book, cap - count))
    return count


def take_books(conn: Connection, terminal_id: str, kind: BookType, books: int) -> list[int]:
    """First serials of ``books`` books for ``kind`` from the terminal's cassette, or
    FailedPrecondition ``no_stock``. The caller inserts the leaves in the same transaction;
    the unique index on live serials refuses a racing allocation (the caller retries)."""
    starts: list[int] = []
    for r in loaded_ranges(conn, terminal_id, kind.book_type):
        used = _used(conn, kind.prefix, r.first, r.last)
        starts += _free_books(used, r.first, r.last, kind.leaves_per_book, books - len(starts))
        if len(starts) == books:
            return starts
    raise FailedPrecondition(
        f"{kind.name}: {books} book(s) wanted, {len(starts)} in this terminal's cassette",
        reason="no_stock",
    )


def load_range(
    conn: Connection,
    terminal_id: str,
    book_type: str,
    first: int,
    last: int,
    actor: str,
    now: datetime,
) -> int:
    """Register a range staff loaded; refused if it overlaps a range loaded anywhere for the
    same prefix (the same pre-printed serial cannot be in two cassettes)."""
    kinds = book_types(conn)
    if book_type not in kinds:
        raise InvalidArgument(
            "book_type", f"no book type {book_type!r}", reason="unknown_book_type"
        )
    if not 1 <= first <= last <= MAX_SERIAL:
        raise InvalidArgument(
            "first_serial", f"need 1 <= first ({first}) <= last ({last}) <= {MAX_SERIAL}"
        )
    prefix = kinds[book_type].prefix
    same_prefix = [t for t, k in kinds.items() if k.prefix == prefix]
    overlap = conn.execute(
        select(cheque_stock_ranges).where(
            and_(
                cheque_stock_ranges.c.book_type.in_(same_prefix),
                cheque_stock_ranges.c.unloaded_at.is_(None),
                cheque_stock_ranges.c.first_serial <= last,
                cheque_stock_ranges.c.last_serial >= first,
            )
        )
    ).first()
    if overlap is not None:
        raise FailedPrecondition(
            f"serials {first}-{last} overlap range {overlap.first_serial}-{overlap.last_serial} "
            f"loaded in {overlap.terminal_id}",
            reason="range_overlap",
        )
    result = conn.execute(
        cheque_stock_ranges.insert().values(
            terminal_id=terminal_id,
            book_type=book_type,
            first_serial=first,
            last_serial=last,
            loaded_by=actor,
            loaded_at=now,
        )
    )
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def unload_range(conn: Connection, range_id: int, now: datetime) -> None:
    """The cassette was emptied: its remaining blank serials are no longer in stock."""
    done = conn.execute(
        cheque_stock_ranges.update()
        .where(
            cheque_stock_ranges.c.range_id == range_id,
            cheque_stock_ranges.c.unloaded_at.is_(None),
        )
        .values(unloaded_at=now)
    )
    if done.rowcount != 1:
        raise FailedPrecondition(f"no loaded range {range_id}", reason="unknown_range")
