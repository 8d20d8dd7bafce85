"""Pairing handles: issued per terminal, rotated, single use; the pairings they become.

Plain functions over the engine, shared by the gRPC servicer (the phone gateway), the
TerminalLink handlers and the rotation loop, on SQLite and PostgreSQL alike. Every write
locks the terminal's fleet row first, so two phones opening two handles of one terminal at
once cannot both pair (RFC 10027: one device, one pairing, first opening wins).

Times are passed in (timezone-aware UTC), so tests control the clock.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Row, delete, or_, select, update
from sqlalchemy.exc import IntegrityError

from branchline.common.errors import (
    MAX_ID,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    check_text,
    echo,
)
from branchline.server.delivery.bus import TOPIC_PAIRING, signal_in_transaction
from branchline.server.mobile.schema import mobile_pairings as table
from branchline.server.storage.engine import connect, write_transaction
from branchline.server.storage.schema import terminals

# A terminal shows a new handle about this often while nobody has paired...
ROTATE_EVERY = timedelta(seconds=30)
# ...and each can be opened for this long after it was issued (a phone that scanned just
# before a rotation still pairs).
HANDLE_TTL = timedelta(minutes=2)
# A paired session left alone this long ends by itself; every use renews it.
SESSION_IDLE = timedelta(minutes=10)
# Ended and unused rows are kept this long (for the "already used" answer), then purged.
KEEP_ROWS = timedelta(days=1)

OFFERED = "offered"
PAIRED = "paired"
ENDED = "ended"
SUPERSEDED = "superseded"

CANCELED_BY_PHONE = "canceled_by_phone"
CANCELED_BY_TERMINAL = "canceled_by_terminal"
TIMED_OUT = "timed_out"

# No I, L, O, 0 or 1: a code read off a screen and typed on a phone is not mistyped.
SHORT_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
SHORT_CODE_LENGTH = 8
HANDLE_BYTES = 18  # 144 random bits, 24 URL-safe characters
MAX_HANDLE = 64
_CODE_SEPARATORS = re.compile(r"[\s\-]")


@dataclass(frozen=True)
class Offer:
    """A handle the terminal shows as a QR (and as its short code)."""

    handle: str
    short_code: str
    terminal_id: str
    issued_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class Pairing:
    """A phone paired with a terminal (``pairing_id`` is the handle it opened)."""

    pairing_id: str
    terminal_id: str
    branch: str
    state: str
    matching_code: str
    paired_at: datetime
    session_expires_at: datetime
    ended_at: datetime | None = None
    end_reason: str = ""

    @property
    def live(self) -> bool:
        return self.state == PAIRED


@dataclass(frozen=True)
class Opened:
    """What the phone gets for opening a handle: the pairing and its session token (for the
    phone only: never stored, never sent to the terminal)."""

    pairing: Pairing
    session_token: str


@dataclass(frozen=True)
class TerminalPairing:
    """What the terminal shows: the live pairing, else the newest handle on offer."""

    offer: Offer | None
    pairing: Pairing | None


def format_short_code(code: str) -> str:
    """``ABCD-EFGH``: how the terminal shows the short code."""
    return f"{code[:4]}-{code[4:]}"


def normalize_short_code(field: str, typed: str) -> str:
    """The code as stored, from what a customer typed (any case, spaces or dashes)."""
    check_text(field, typed, max_len=MAX_ID)
    code = _CODE_SEPARATORS.sub("", typed).upper()
    if len(code) != SHORT_CODE_LENGTH or any(c not in SHORT_CODE_ALPHABET for c in code):
        raise InvalidArgument(
            field,
            f"{echo(typed)} is not a pairing code: {SHORT_CODE_LENGTH} letters and digits "
            "as shown under the terminal's QR code",
            reason="malformed_code",
        )
    return code


def session_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_handle(engine: Engine, terminal_id: str, now: datetime) -> Offer:
    """A new handle for ``terminal_id`` (which must have registered)."""
    for _attempt in range(5):
        handle = secrets.token_urlsafe(HANDLE_BYTES)
        code = "".join(secrets.choice(SHORT_CODE_ALPHABET) for _ in range(SHORT_CODE_LENGTH))
        try:
            with write_transaction(engine) as conn:
                branch = _lock_terminal(conn, terminal_id)
                values = {
                    "handle": handle,
                    "short_code": code,
                    "terminal_id": terminal_id,
                    "branch": branch,
                    "state": OFFERED,
                    "issued_at": now,
                    "expires_at": now + HANDLE_TTL,
                }
                conn.execute(table.insert().values(values))
        except IntegrityError:
            continue  # a short code in use (about 1 in 10^11): draw again
        return Offer(handle, code, terminal_id, now, now + HANDLE_TTL)
    raise RuntimeError("could not draw an unused pairing code in 5 attempts")


def terminal_pairing(engine: Engine, terminal_id: str, now: datetime) -> TerminalPairing:
    """The terminal's live pairing (ended first if its session ran out) or newest offer."""
    with connect(engine) as conn:
        row = _live_row(conn, terminal_id)
        if row is not None and row.session_expires_at > now:
            return TerminalPairing(None, pairing_from_row(row))
        offer = conn.execute(
            select(table)
            .where(
                table.c.terminal_id == terminal_id,
                table.c.state == OFFERED,
                table.c.expires_at > now,
            )
            .order_by(table.c.issued_at.desc())
            .limit(1)
        ).first()
    if row is not None:
        _end(engine, row.handle, TIMED_OUT, now)
    return TerminalPairing(offer_from_row(offer) if offer is not None else None, None)


def rotate(engine: Engine, terminal_id: str, now: datetime) -> TerminalPairing:
    """What the terminal should show now, issuing a new handle when the newest one is
    ``ROTATE_EVERY`` old (or there is none). A paired terminal gets no new handles."""
    current = terminal_pairing(engine, terminal_id, now)
    if current.pairing is not None:
        return current
    if current.offer is not None and now - current.offer.issued_at < ROTATE_EVERY:
        return current
    return TerminalPairing(issue_handle(engine, terminal_id, now), None)


def open_handle(engine: Engine, handle: str, now: datetime, *, terminal_id: str = "") -> Opened:
    """The first opening of ``handle`` pairs the phone with its terminal.

    ``terminal_id``, when given, is the terminal the phone expects (the handle must be that
    terminal's). Refused: unknown handle (NotFound ``unknown_handle``), another terminal's
    (PermissionDenied ``handle_bound_to_terminal``), already opened (FailedPrecondition
    ``handle_used``), past its expiry (``handle_expired``), or the terminal already paired
    with another phone (``terminal_busy``).
    """
    check_text("handle", handle, max_len=MAX_HANDLE)
    check_text("terminal_id", terminal_id, max_len=MAX_ID, required=False)
    return _open(engine, table.c.handle == handle, "handle", now, terminal_id)


def open_short_code(engine: Engine, typed: str, now: datetime) -> Opened:
    """As ``open_handle``, for the short code a customer typed."""
    code = normalize_short_code("short_code", typed)
    return _open(engine, table.c.short_code == code, "short_code", now, "")


def session(
    engine: Engine, token: str, now: datetime, *, terminal_id: str = "", renew: bool = True
) -> Pairing:
    """The live pairing a phone's session token names (renewing its idle timeout unless
    ``renew`` is False: a watch that merely stays open is no activity).

    Refused: unknown token (PermissionDenied ``unknown_session``), a pairing of another
    terminal than ``terminal_id`` (``session_bound_to_terminal``), a pairing that ended
    (FailedPrecondition ``pairing_ended``, with the reason in the metadata).
    """
    check_text("session_token", token, max_len=MAX_ID)
    check_text("terminal_id", terminal_id, max_len=MAX_ID, required=False)
    with write_transaction(engine) as conn:
        row = conn.execute(select(table).where(table.c.session_hash == session_hash(token))).first()
        if row is None:
            raise PermissionDenied(
                "session_token: no pairing has this session; scan the terminal's QR code again",
                rule="unknown_session",
                field="session_token",
            )
        if terminal_id and row.terminal_id != terminal_id:
            raise PermissionDenied(
                f"terminal_id: this phone is paired with another terminal, not {echo(terminal_id)}",
                rule="session_bound_to_terminal",
                field="terminal_id",
            )
        _lock_terminal(conn, row.terminal_id)
        row = _reload(conn, row.handle)
        if row.state == PAIRED and row.session_expires_at <= now:
            _end_in(conn, row.handle, TIMED_OUT, now)
            row = _reload(conn, row.handle)
        if row.state != PAIRED:
            raise _ended(row)
        if renew:
            conn.execute(
                update(table)
                .where(table.c.handle == row.handle)
                .values(session_expires_at=now + SESSION_IDLE)
            )
        return pairing_from_row(_reload(conn, row.handle))


def cancel_by_phone(engine: Engine, token: str, now: datetime) -> Pairing:
    """The phone ends its pairing; ending an ended pairing again is no error."""
    check_text("session_token", token, max_len=MAX_ID)
    with connect(engine) as conn:
        row = conn.execute(
            select(table.c.handle).where(table.c.session_hash == session_hash(token))
        ).first()
    if row is None:
        raise PermissionDenied(
            "session_token: no pairing has this session",
            rule="unknown_session",
            field="session_token",
        )
    return _end(engine, row.handle, CANCELED_BY_PHONE, now)


def cancel_by_terminal(engine: Engine, terminal_id: str, now: datetime) -> Pairing | None:
    """The customer at the terminal ends its live pairing (None when there was none)."""
    with connect(engine) as conn:
        row = _live_row(conn, terminal_id)
    if row is None:
        return None
    return _end(engine, row.handle, CANCELED_BY_TERMINAL, now)


def last_ended(engine: Engine, terminal_id: str, since: datetime) -> Pairing | None:
    """The terminal's pairing that ended most recently, if at or after ``since``."""
    with connect(engine) as conn:
        row = conn.execute(
            select(table)
            .where(
                table.c.terminal_id == terminal_id,
                table.c.state == ENDED,
                table.c.ended_at >= since,
            )
            .order_by(table.c.ended_at.desc())
            .limit(1)
        ).first()
    return pairing_from_row(row) if row is not None else None


def pairing_by_id(engine: Engine, pairing_id: str) -> Pairing | None:
    with connect(engine) as conn:
        row = conn.execute(select(table).where(table.c.handle == pairing_id)).first()
    return pairing_from_row(row) if row is not None and row.paired_at is not None else None


def purge(engine: Engine, now: datetime) -> int:
    """Delete rows nobody can use or ask about any more; returns how many."""
    cutoff = now - KEEP_ROWS
    with write_transaction(engine) as conn:
        result = conn.execute(
            delete(table).where(
                or_(
                    table.c.state.in_((OFFERED, SUPERSEDED)) & (table.c.expires_at < cutoff),
                    (table.c.state == ENDED) & (table.c.ended_at < cutoff),
                )
            )
        )
        return result.rowcount or 0


# -- internals -------------------------------------------------------------------------


def _open(engine: Engine, where: Any, field: str, now: datetime, terminal_id: str) -> Opened:
    with write_transaction(engine) as conn:
        row = conn.execute(select(table).where(where)).first()
        if row is None:
            raise NotFound(
                f"{field}: this code is not one a terminal showed; scan the QR code again",
                field=field,
                reason="unknown_handle",
            )
        if terminal_id and row.terminal_id != terminal_id:
            raise PermissionDenied(
                f"{field}: this code belongs to another terminal than {echo(terminal_id)}",
                rule="handle_bound_to_terminal",
                field=field,
            )
        _lock_terminal(conn, row.terminal_id)
        row = _reload(conn, row.handle)
        _check_openable(row, field, now)
        live = _live_row(conn, row.terminal_id)
        if live is not None:
            if live.session_expires_at > now:
                raise FailedPrecondition(
                    f"{field}: the terminal is already continuing on another phone",
                    field=field,
                    reason="terminal_busy",
                )
            _end_in(conn, live.handle, TIMED_OUT, now)
        token = secrets.token_urlsafe(32)
        conn.execute(
            update(table)
            .where(table.c.handle == row.handle)
            .values(
                state=PAIRED,
                paired_at=now,
                matching_code=f"{secrets.randbelow(10_000):04d}",
                session_hash=session_hash(token),
                session_expires_at=now + SESSION_IDLE,
            )
        )
        # Every other handle the terminal still shows is void: one pairing at a time.
        conn.execute(
            update(table)
            .where(
                table.c.terminal_id == row.terminal_id,
                table.c.state == OFFERED,
                table.c.handle != row.handle,
            )
            .values(state=SUPERSEDED)
        )
        # The replica holding the terminal's stream tells its screen at once.
        signal_in_transaction(conn, TOPIC_PAIRING)
        return Opened(pairing_from_row(_reload(conn, row.handle)), token)


def _check_openable(row: Row[Any], field: str, now: datetime) -> None:
    """Refuse a handle that was used, voided by another pairing, or has expired."""
    if row.state in (PAIRED, ENDED):
        raise FailedPrecondition(
            f"{field}: this code was already used; scan the new code on the terminal",
            field=field,
            reason="handle_used",
        )
    if row.state == SUPERSEDED:
        raise FailedPrecondition(
            f"{field}: the terminal is already continuing on another phone",
            field=field,
            reason="terminal_busy",
        )
    if row.expires_at <= now:
        raise FailedPrecondition(
            f"{field}: this code has expired; scan the new code on the terminal",
            field=field,
            reason="handle_expired",
        )


def _end(engine: Engine, handle: str, reason: str, now: datetime) -> Pairing:
    with write_transaction(engine) as conn:
        terminal_id = conn.execute(
            select(table.c.terminal_id).where(table.c.handle == handle)
        ).scalar_one()
        _lock_terminal(conn, terminal_id)
        _end_in(conn, handle, reason, now)
        return pairing_from_row(_reload(conn, handle))


def _end_in(conn: Connection, handle: str, reason: str, now: datetime) -> None:
    conn.execute(
        update(table)
        .where(table.c.handle == handle, table.c.state == PAIRED)
        .values(state=ENDED, ended_at=now, end_reason=reason)
    )
    signal_in_transaction(conn, TOPIC_PAIRING)


def _ended(row: Row[Any]) -> FailedPrecondition:
    reason = row.end_reason or ""
    return FailedPrecondition(
        f"session_token: this pairing has ended ({reason.replace('_', ' ')})",
        field="session_token",
        reason="pairing_ended",
        metadata={"end_reason": reason},
    )


def _lock_terminal(conn: Connection, terminal_id: str) -> str:
    branch = conn.execute(
        select(terminals.c.branch).where(terminals.c.terminal_id == terminal_id).with_for_update()
    ).scalar_one_or_none()
    if branch is None:
        raise NotFound(
            f"terminal_id: no terminal {echo(terminal_id)}",
            field="terminal_id",
            reason="unknown_terminal",
        )
    return str(branch)


def _live_row(conn: Connection, terminal_id: str) -> Row[Any] | None:
    return conn.execute(
        select(table).where(table.c.terminal_id == terminal_id, table.c.state == PAIRED)
    ).first()


def _reload(conn: Connection, handle: str) -> Row[Any]:
    return conn.execute(select(table).where(table.c.handle == handle)).one()


def offer_from_row(row: Row[Any]) -> Offer:
    return Offer(row.handle, row.short_code, row.terminal_id, row.issued_at, row.expires_at)


def pairing_from_row(row: Row[Any]) -> Pairing:
    return Pairing(
        pairing_id=row.handle,
        terminal_id=row.terminal_id,
        branch=row.branch,
        state=row.state,
        matching_code=row.matching_code or "",
        paired_at=row.paired_at,
        session_expires_at=row.session_expires_at,
        ended_at=row.ended_at,
        end_reason=row.end_reason or "",
    )
