"""Video-teller calls: queue, routing by skill, answer and hang-up, signalling relay,
remote-peripheral commands and the customer's signature. Each operation is one
transaction; nothing lives only in memory, so a restart or another replica loses nothing.

A call takes a teller exactly as a task does: the teller row's ``load`` moves with a
conditional UPDATE (on duty, present, load 0), so a teller never holds two calls (nor a
call and a task) whatever runs concurrently on whichever replica. A teller who becomes
free takes the oldest queued call of their branch and skills before any queued task.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import secrets
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Row,
    Select,
    any_,
    bindparam,
    exists,
    func,
    select,
    true,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError

from branchline.common.redaction import redact_text
from branchline.server.dispatch import routing, service, store
from branchline.server.dispatch import validate as check
from branchline.server.dispatch.call_schema import (
    call_commands,
    call_signals,
    call_signatures,
    calls,
)
from branchline.server.dispatch.model import (
    RANDOM,
    TELLER,
    Actor,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from branchline.server.dispatch.schema import branches, teller_skills, tellers
from branchline.server.dispatch.service import TERMINAL, DispatchService

QUEUED = "queued"
RINGING = "ringing"
ACTIVE = "active"
ENDED = "ended"
LEFT = "left"
OPEN = (QUEUED, RINGING, ACTIVE)
HELD = (RINGING, ACTIVE)
MODES = ("super_counter", "video_service", "video_teller")
SIGNAL_KINDS = ("offer", "answer", "candidate")
COMMAND_KINDS = ("read_card", "read_id", "pin", "print", "signature")
COMPLETIONS = (
    "success",
    "canceled",
    "device_not_ready",
    "hardware_error",
    "timeout",
    "invalid_data",
    "user_error",
    "sequence_error",
    "fraud_attempt",
    "unsupported",
)
MAX_SDP = 16 * 1024
MAX_CANDIDATE = 1024
MAX_LINES = 40
MAX_LINE = 200
MAX_FIELDS = 32
MAX_SIGNATURE_BYTES = 512 * 1024
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# A call ringing this long unanswered goes back to the head of the queue; the teller is
# marked away (as for a missed task offer).
DEFAULT_RING_SECONDS = 30.0
# Until calls have ended in the branch, a call is expected to take this long.
DEFAULT_HANDLE_SECONDS = 180
HANDLE_SAMPLE = 20

# How many times a call reads a fresh page of free-teller candidates when every one of the
# page was taken by other transactions meanwhile.
RING_PAGES = 3

# (pan, DUKPT PIN block, KSN, format) -> (block under the teller ZPK, its format, ZPK name)
PinTranslator = Callable[[str, bytes, bytes, int], tuple[bytes, int, str]]


# -- statements of the routing paths, built once (see store) -------------------------------

_NOW = bindparam("b_now", type_=calls.c.updated_at.type)
_READ_CALL = select(calls).where(calls.c.call_id == bindparam("b_call_id"))
_LOCK_CALL = _READ_CALL.with_for_update()
_TERMINAL_REQUEST_OR_OPEN = union_all(
    select(calls).where(
        calls.c.terminal_id == bindparam("b_terminal_id"),
        calls.c.request_id == bindparam("b_request_id"),
    ),
    select(calls).where(calls.c.terminal_id == bindparam("b_terminal_id"), calls.c.state.in_(OPEN)),
)
_OPEN_CALLS_OF = select(calls).where(
    calls.c.terminal_id.in_(bindparam("b_terminal_ids", expanding=True)),
    calls.c.state.in_(OPEN),
)
_BRANCH_STRATEGY = select(branches.c.routing_strategy).where(
    branches.c.branch_id == bindparam("b_branch_id")
)
_INSERT_CALL = calls.insert().returning(*calls.c)
_RING = (
    update(calls)
    .where(calls.c.call_id == bindparam("b_call_id"), calls.c.state == QUEUED)
    .values(state=RINGING, teller_id=bindparam("b_teller_id"), routed_at=_NOW, updated_at=_NOW)
)
_FINISH = (
    update(calls)
    .where(calls.c.call_id == bindparam("b_call_id"), calls.c.state == bindparam("b_expect"))
    .values(
        state=bindparam("b_state"),
        ended_at=_NOW,
        end_reason=bindparam("b_reason"),
        updated_at=_NOW,
    )
    .returning(*calls.c)
)
# A branch's queued calls of one business type, in queue order (its index).
_QUEUE_ORDER = (calls.c.created_at, calls.c.call_id)
_NEXT_QUEUED_IN_ORDER = (
    select(calls)
    .where(
        calls.c.branch == bindparam("b_branch"),
        calls.c.state == QUEUED,
        calls.c.business_type
        == any_(bindparam("b_skills", type_=ARRAY(calls.c.business_type.type))),
    )
    .order_by(*_QUEUE_ORDER)
    .limit(1)
    .with_for_update(skip_locked=True)
)


def _queue_head(business_type: ColumnElement[str]) -> Select[Any]:
    """The first queued call of one (branch, business type) queue, unlocked."""
    return (
        select(calls.c.call_id, calls.c.created_at)
        .where(
            calls.c.branch == bindparam("b_branch"),
            calls.c.state == QUEUED,
            calls.c.business_type == business_type,
        )
        .order_by(*_QUEUE_ORDER)
        .limit(1)
    )


# PostgreSQL: the oldest of the skills' queue heads (LATERAL over the teller's skills), then
# that call locked unless another transaction holds it. One row: the head's id and the
# locked call (all NULL when the head was held or changed meanwhile); no row: no call.
_PG_SKILLS = (
    func.unnest(bindparam("b_skills", type_=ARRAY(calls.c.business_type.type)))
    .table_valued("skill")
    .render_derived(name="teller_skill")
)
_PG_QUEUE_HEAD = _queue_head(_PG_SKILLS.c.skill).lateral("queue_head")
_PG_FIRST = (
    select(_PG_QUEUE_HEAD.c.call_id)
    .select_from(_PG_SKILLS.join(_PG_QUEUE_HEAD, true()))
    .order_by(_PG_QUEUE_HEAD.c.created_at, _PG_QUEUE_HEAD.c.call_id)
    .limit(1)
    .cte("first_call")
)
_PG_LOCKED = (
    select(calls)
    .where(calls.c.call_id == _PG_FIRST.c.call_id, calls.c.state == QUEUED)
    .with_for_update(of=calls, skip_locked=True)
    .lateral("locked")
)
_PG_NEXT_QUEUED = select(_PG_FIRST.c.call_id.label("head_id"), _PG_LOCKED).select_from(
    _PG_FIRST.outerjoin(_PG_LOCKED, true())
)


@functools.cache
def _sqlite_next_queued(skills: int) -> Select[Any]:
    """SQLite (no LATERAL): the oldest of the skills' queue heads, by UNION ALL."""
    heads = union_all(
        *(select(_queue_head(bindparam(f"b_skill_{i}")).subquery()) for i in range(skills))
    ).subquery()
    first = select(heads.c.call_id).order_by(heads.c.created_at, heads.c.call_id).limit(1)
    return select(calls).where(calls.c.call_id == first.scalar_subquery())


_QUEUE_IDS = (
    select(calls.c.call_id)
    .where(
        calls.c.branch == bindparam("b_branch"),
        calls.c.business_type == bindparam("b_business_type"),
        calls.c.state == QUEUED,
    )
    .order_by(*_QUEUE_ORDER)
)
_LAST_HANDLED = (
    select(calls.c.answered_at, calls.c.ended_at)
    .where(
        calls.c.branch == bindparam("b_branch"),
        calls.c.state == ENDED,
        calls.c.answered_at.is_not(None),
    )
    .order_by(calls.c.ended_at.desc())
    .limit(HANDLE_SAMPLE)
)
# On-duty tellers of the branch with the skill: from the skill's tellers (its index), each
# checked by primary key.
_SERVING = (
    select(func.count())
    .select_from(teller_skills)
    .where(
        teller_skills.c.skill == bindparam("b_business_type"),
        exists().where(
            tellers.c.teller_id == teller_skills.c.teller_id,
            tellers.c.branch_id == bindparam("b_branch"),
            tellers.c.on_duty == true(),
        ),
    )
)
# The queued calls ahead of one (same queue, earlier in its order) and the tellers serving
# the queue, in one statement; the row comparison reads a range of the queue's index.
_AHEAD_AND_SERVING = select(
    select(func.count())
    .select_from(calls)
    .where(
        calls.c.branch == bindparam("b_branch"),
        calls.c.state == QUEUED,
        calls.c.business_type == bindparam("b_business_type"),
        tuple_(calls.c.created_at, calls.c.call_id)
        < tuple_(
            bindparam("b_created_at", type_=calls.c.created_at.type),
            bindparam("b_call_id", type_=calls.c.call_id.type),
        ),
    )
    .scalar_subquery()
    .label("ahead"),
    _SERVING.scalar_subquery().label("serving"),
)


class TranslationFailed(Exception):
    """The HSM could not translate the PIN block; ``code`` is shown to the teller."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class CallView:
    call_id: str
    request_id: str
    terminal_id: str
    branch: str
    business_type: str
    mode: str
    state: str
    teller_id: str | None
    created_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    end_reason: str
    position: int = 0
    estimated_wait_seconds: int = 0


@dataclass(frozen=True)
class SignalView:
    signal_id: int
    call_id: str
    sender: str
    kind: str
    payload: str
    at: datetime


@dataclass(frozen=True)
class CommandView:
    command_id: int
    call_id: str
    kind: str
    title: str
    lines: tuple[str, ...]
    sent_at: datetime
    completion: str | None
    code: str
    detail: str
    fields: dict[str, str] = field(default_factory=dict)
    pin_block: bytes | None = None
    pin_block_format: int | None = None
    zpk_name: str | None = None
    signature_sha256: str | None = None
    signature_size: int = 0
    done_at: datetime | None = None


@dataclass(frozen=True)
class Outcome:
    """A device command's outcome as the terminal reports it."""

    command_id: int
    call_id: str
    completion: str
    code: str = ""
    detail: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    pin_block: bytes = b""
    ksn: bytes = b""
    pin_block_format: int = 0
    pan: str = ""
    signature_png: bytes = b""
    signature_sha256: str = ""


def _call_view(row: Row[Any], position: int = 0, wait: int = 0) -> CallView:
    return CallView(
        call_id=row.call_id,
        request_id=row.request_id,
        terminal_id=row.terminal_id,
        branch=row.branch,
        business_type=row.business_type,
        mode=row.mode,
        state=row.state,
        teller_id=row.teller_id,
        created_at=row.created_at,
        answered_at=row.answered_at,
        ended_at=row.ended_at,
        end_reason=row.end_reason,
        position=position,
        estimated_wait_seconds=wait,
    )


def _command_view(row: Row[Any], signature_size: int = 0) -> CommandView:
    return CommandView(
        command_id=int(row.id),
        call_id=row.call_id,
        kind=row.kind,
        title=row.title,
        lines=tuple(json.loads(row.lines)),
        sent_at=row.sent_at,
        completion=row.completion,
        code=row.code,
        detail=row.detail,
        fields={str(k): str(v) for k, v in json.loads(row.fields).items()},
        pin_block=row.pin_block,
        pin_block_format=row.pin_block_format,
        zpk_name=row.zpk_name,
        signature_sha256=row.signature_sha256,
        signature_size=signature_size,
        done_at=row.done_at,
    )


def _signal_view(row: Row[Any]) -> SignalView:
    return SignalView(int(row.id), row.call_id, row.sender, row.kind, row.payload, row.at)


class CallService:
    def __init__(
        self,
        dispatch: DispatchService,
        *,
        translate_pin: PinTranslator | None = None,
        ring_timeout: float = DEFAULT_RING_SECONDS,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.dispatch = dispatch
        self.ring_timeout = ring_timeout
        self.engine: Engine = dispatch.engine
        self.translate_pin = translate_pin
        self._clock = clock
        # A teller the dispatch core frees takes a queued call before a queued task.
        dispatch.pull_hooks.append(self._pull_call)
        dispatch.off_duty_checks.append(self._check_off_duty)

    def _tx(self) -> AbstractContextManager[store.Tx]:
        return store.transaction(self.engine, self._clock())

    # -- the terminal's side ---------------------------------------------------------------

    @store.retrying
    def request_call(
        self, terminal: Actor, branch: str, request_id: str, business_type: str, mode: str
    ) -> CallView:
        """Queue the terminal for a teller with ``business_type``; offered at once to a free
        teller of its branch when there is one. Repeating ``request_id`` returns that call."""
        self._require_terminal(terminal)
        check.ident("request_id", request_id)
        check.skill("business_type", business_type)
        if mode not in MODES:
            raise InvalidArgument(f"mode: must be one of {', '.join(MODES)}")
        with self._tx() as tx:
            # This request's call and the terminal's open ones, in one query.
            mine = tx.conn.execute(
                _TERMINAL_REQUEST_OR_OPEN,
                {"b_terminal_id": terminal.id, "b_request_id": request_id},
            ).all()
            same = next((r for r in mine if r.request_id == request_id), None)
            if same is not None:
                return self._view(tx.conn, same)
            already = next((r for r in mine if r.state in OPEN), None)
            if already is not None:
                raise FailedPrecondition(
                    f"request_id: terminal {terminal.id} already has call {already.call_id} "
                    "open; leave it first"
                )
            found = tx.conn.execute(_BRANCH_STRATEGY, {"b_branch_id": branch}).first()
            if found is None:
                raise NotFound(f"branch: terminal {terminal.id}'s branch {branch!r} is not set up")
            strategy = found.routing_strategy or self.dispatch.strategy
            # The teller first, so the call is written once, already ringing (or queued).
            teller_id = self._ring(tx, branch, business_type, strategy)
            try:
                row = tx.conn.execute(
                    _INSERT_CALL,
                    {
                        "call_id": "C-" + secrets.token_hex(6),
                        "request_id": request_id,
                        "terminal_id": terminal.id,
                        "branch": branch,
                        "business_type": business_type,
                        "mode": mode,
                        "state": QUEUED if teller_id is None else RINGING,
                        "teller_id": teller_id,
                        "created_at": tx.now,
                        "routed_at": None if teller_id is None else tx.now,
                        "end_reason": "",
                        "updated_at": tx.now,
                    },
                ).one()
            except IntegrityError:
                # Rolled back with the teller it took.
                raise FailedPrecondition(
                    f"request_id: {request_id} was sent twice at once; ask again"
                ) from None
            return self._view(tx.conn, row)

    @store.retrying
    def leave(self, terminal: Actor, call_id: str, reason: str = "") -> CallView:
        """The customer leaves the queue, or hangs up (ringing or active)."""
        self._require_terminal(terminal)
        check.text("reason", reason, check.MAX_REASON)
        with self._tx() as tx:
            row = self._open_call_of(tx.conn, terminal, call_id, lock=True)
            if row.state not in OPEN:
                raise FailedPrecondition(f"call_id: call {row.call_id} is already {row.state}")
            return self._view(tx.conn, self._finish(tx, row, LEFT, reason or "the customer left"))

    def terminal_calls(self, terminal: Actor, call_id: str = "") -> list[CallView]:
        """The terminal's open calls (or one call of its own) with position and wait."""
        self._require_terminal(terminal)
        with self.engine.connect() as conn:
            if call_id:
                return [self._view(conn, self._open_call_of(conn, terminal, call_id))]
            rows = conn.execute(
                select(calls).where(calls.c.terminal_id == terminal.id, calls.c.state.in_(OPEN))
            ).all()
            return [self._view(conn, row) for row in rows]

    def open_calls_of(self, terminal_ids: Sequence[str]) -> dict[str, CallView]:
        """The open call of each of these terminals (for pushing), with position and wait."""
        if not terminal_ids:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(_OPEN_CALLS_OF, {"b_terminal_ids": list(terminal_ids)}).all()
            positions = self._positions_of(conn, [r for r in rows if r.state == QUEUED])
            return {row.terminal_id: self._with_position(row, positions) for row in rows}

    def last_call_of(self, terminal_id: str) -> CallView | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(calls)
                .where(calls.c.terminal_id == terminal_id)
                .order_by(calls.c.updated_at.desc())
                .limit(1)
            ).first()
            return _call_view(row) if row is not None else None

    # -- the teller's side -----------------------------------------------------------------

    def queue(self, teller: Actor) -> list[CallView]:
        """The calls of the teller's branch: queued (in order), ringing and active."""
        record = self._teller(teller)
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(calls)
                .where(calls.c.branch == record.branch_id, calls.c.state.in_(OPEN))
                .order_by(calls.c.created_at, calls.c.call_id)
            ).all()
            positions = self._positions(conn, {(r.branch, r.business_type) for r in rows})
            return [self._with_position(row, positions) for row in rows]

    def current(self, teller: Actor) -> CallView:
        self._teller(teller)
        with self.engine.connect() as conn:
            row = conn.execute(
                select(calls).where(calls.c.teller_id == teller.id, calls.c.state.in_(HELD))
            ).first()
        if row is None:
            raise NotFound(f"teller {teller.id} has no call ringing or active")
        return _call_view(row)

    @store.retrying
    def answer(self, teller: Actor, call_id: str = "") -> CallView:
        self._teller(teller)
        with self._tx() as tx:
            if not call_id:
                found = tx.conn.execute(
                    select(calls.c.call_id).where(
                        calls.c.teller_id == teller.id, calls.c.state == RINGING
                    )
                ).first()
                if found is None:
                    raise FailedPrecondition(f"call_id: no call is ringing at teller {teller.id}")
                call_id = found.call_id
            row = self._held_call(tx.conn, teller, call_id, lock=True)
            if row.state != RINGING:
                raise FailedPrecondition(f"call_id: call {call_id} is {row.state}, not ringing")
            tx.conn.execute(
                update(calls)
                .where(calls.c.call_id == call_id, calls.c.state == RINGING)
                .values(state=ACTIVE, answered_at=tx.now, updated_at=tx.now)
            )
            return _call_view(self._call_or_404(tx.conn, call_id))

    @store.retrying
    def end(self, teller: Actor, call_id: str, reason: str = "") -> CallView:
        self._teller(teller)
        check.text("reason", reason, check.MAX_REASON)
        with self._tx() as tx:
            row = self._held_call(tx.conn, teller, call_id, lock=True)
            return _call_view(
                self._finish(tx, row, ENDED, reason or f"teller {teller.id} ended the call")
            )

    # -- signalling ------------------------------------------------------------------------

    def add_signal(self, actor: Actor, call_id: str, kind: str, payload: str) -> SignalView:
        """Relay one SDP offer / answer or ICE candidate to the other side of the call."""
        if kind not in SIGNAL_KINDS:
            raise InvalidArgument(f"kind: must be one of {', '.join(SIGNAL_KINDS)}")
        limit = MAX_CANDIDATE if kind == "candidate" else MAX_SDP
        if not payload:
            raise InvalidArgument("payload: must not be empty")
        if len(payload.encode()) > limit:
            raise InvalidArgument(f"payload: a {kind} is at most {limit} bytes")
        with self._tx() as tx:
            if actor.role == TELLER:
                self._teller(actor)
                row = self._held_call(tx.conn, actor, call_id)
                sender = "teller"
            else:
                row = self._open_call_of(tx.conn, actor, call_id)
                sender = "terminal"
            if row.state not in HELD:
                raise FailedPrecondition(
                    f"call_id: call {call_id} is {row.state}; signalling needs a teller on it"
                )
            signal_id = tx.conn.execute(
                call_signals.insert()
                .values(call_id=call_id, sender=sender, kind=kind, payload=payload, at=tx.now)
                .returning(call_signals.c.id)
            ).scalar_one()
            return SignalView(int(signal_id), call_id, sender, kind, payload, tx.now)

    def signals_after(
        self, actor: Actor, call_id: str, after_id: int, *, check_access: bool = True
    ) -> list[SignalView]:
        """The other side's signals of the call after ``after_id``."""
        with self.engine.connect() as conn:
            if actor.role == TELLER:
                if check_access:
                    self._held_call(conn, actor, call_id, any_state=True)
                sender = "terminal"
            else:
                if check_access:
                    self._open_call_of(conn, actor, call_id)
                sender = "teller"
            rows = conn.execute(
                select(call_signals)
                .where(
                    call_signals.c.call_id == call_id,
                    call_signals.c.sender == sender,
                    call_signals.c.id > after_id,
                )
                .order_by(call_signals.c.id)
            )
            return [_signal_view(r) for r in rows]

    # -- remote peripherals ----------------------------------------------------------------

    def send_command(
        self, teller: Actor, call_id: str, kind: str, title: str = "", lines: Sequence[str] = ()
    ) -> CommandView:
        """A device command for the terminal of the teller's own active call."""
        self._teller(teller)
        if kind not in COMMAND_KINDS:
            raise InvalidArgument(f"kind: must be one of {', '.join(COMMAND_KINDS)}")
        check.text("title", title, MAX_LINE)
        if len(lines) > MAX_LINES:
            raise InvalidArgument(f"lines: at most {MAX_LINES}")
        for i, line in enumerate(lines):
            check.text(f"lines[{i}]", line, MAX_LINE)
        if kind in ("print", "signature") and not (title.strip() or any(s.strip() for s in lines)):
            raise InvalidArgument(f"lines: a {kind} command needs a title or lines to show")
        with self._tx() as tx:
            row = self._held_call(tx.conn, teller, call_id)
            if row.state != ACTIVE:
                raise FailedPrecondition(
                    f"call_id: call {call_id} is {row.state}; answer it before using the "
                    "terminal's devices"
                )
            command_id = tx.conn.execute(
                call_commands.insert()
                .values(
                    call_id=call_id,
                    kind=kind,
                    title=title,
                    lines=json.dumps(list(lines)),
                    sent_at=tx.now,
                    code="",
                    detail="",
                    fields="{}",
                )
                .returning(call_commands.c.id)
            ).scalar_one()
            return _command_view(self._command_row(tx.conn, int(command_id)))

    def commands_after(self, teller: Actor, call_id: str, after_id: int) -> list[CommandView]:
        """The call's commands after ``after_id`` (the teller's own calls only)."""
        with self.engine.connect() as conn:
            self._held_call(conn, teller, call_id, any_state=True)
            rows = conn.execute(
                select(call_commands)
                .where(call_commands.c.call_id == call_id, call_commands.c.id > after_id)
                .order_by(call_commands.c.id)
            ).all()
            return [self._command(conn, r) for r in rows]

    def command(self, teller: Actor, call_id: str, command_id: int) -> CommandView:
        with self.engine.connect() as conn:
            self._held_call(conn, teller, call_id, any_state=True)
            row = self._command_row(conn, command_id)
            if row.call_id != call_id:
                raise NotFound(f"command_id: no command {command_id} in call {call_id}")
            return self._command(conn, row)

    def pending_commands(self, terminal_id: str, after_id: int = 0) -> list[CommandView]:
        """Commands of the terminal's active call still without an outcome (to deliver)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(call_commands)
                .join(calls, calls.c.call_id == call_commands.c.call_id)
                .where(
                    calls.c.terminal_id == terminal_id,
                    calls.c.state == ACTIVE,
                    call_commands.c.completion.is_(None),
                    call_commands.c.id > after_id,
                )
                .order_by(call_commands.c.id)
            ).all()
            return [_command_view(r) for r in rows]

    def terminal_signals(self, terminal_id: str, after_id: int) -> list[SignalView]:
        """The teller's signals for the terminal's held call after ``after_id`` (to deliver)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(call_signals)
                .join(calls, calls.c.call_id == call_signals.c.call_id)
                .where(
                    calls.c.terminal_id == terminal_id,
                    calls.c.state.in_(HELD),
                    call_signals.c.sender == "teller",
                    call_signals.c.id > after_id,
                )
                .order_by(call_signals.c.id)
            ).all()
            return [_signal_view(r) for r in rows]

    def record_outcome(self, terminal: Actor, outcome: Outcome) -> CommandView:
        """The terminal reports a command's outcome; the first report counts.

        A PIN block is translated by the HSM to the teller's zone PIN key and only that is
        kept; a signature is checked against its SHA-256 and stored with the call.
        """
        self._require_terminal(terminal)
        if outcome.completion not in COMPLETIONS:
            raise InvalidArgument(f"completion: must be one of {', '.join(COMPLETIONS)}")
        if len(outcome.fields) > MAX_FIELDS:
            raise InvalidArgument(f"fields: at most {MAX_FIELDS} entries")
        check.fields_map("fields", outcome.fields)
        check.text("detail", outcome.detail, check.MAX_REASON)
        check.text("code", outcome.code, 64)
        with self.engine.connect() as conn:
            row = self._command_row(conn, outcome.command_id)
            call = self._open_call_of(conn, terminal, row.call_id)
            if outcome.call_id and outcome.call_id != row.call_id:
                raise InvalidArgument(
                    f"call_id: command {outcome.command_id} belongs to call {row.call_id}"
                )
            if row.completion is not None:
                return self._command(conn, row)  # a repeat: the first report stands
            if call.state != ACTIVE:
                raise FailedPrecondition(f"call_id: call {call.call_id} is {call.state}")
        # What the teller sees goes through the same rule as every log line: a PAN that
        # reached a field or the detail by mistake is masked, track data dropped.
        values: dict[str, Any] = {
            "completion": outcome.completion,
            "code": outcome.code,
            "detail": redact_text(outcome.detail),
            "fields": json.dumps({k: redact_text(v) for k, v in outcome.fields.items()}),
        }
        signature: dict[str, Any] | None = None
        if outcome.completion == "success" and row.kind == "pin":
            values.update(self._translated(outcome))
        elif outcome.completion == "success" and row.kind == "signature":
            signature = self._signature(outcome, row)
            values["signature_sha256"] = signature["sha256"]
        elif outcome.pin_block or outcome.signature_png:
            raise InvalidArgument(
                f"{'pin_block' if outcome.pin_block else 'signature_png'}: not expected for a "
                f"{outcome.completion} {row.kind} outcome"
            )
        with self._tx() as tx:
            values["done_at"] = tx.now
            if signature is not None:
                exists = tx.conn.execute(
                    select(call_signatures.c.sha256).where(
                        call_signatures.c.sha256 == signature["sha256"]
                    )
                ).first()
                if exists is None:
                    tx.conn.execute(call_signatures.insert().values(signed_at=tx.now, **signature))
            tx.conn.execute(
                update(call_commands)
                .where(call_commands.c.id == row.id, call_commands.c.completion.is_(None))
                .values(values)
            )
            return self._command(tx.conn, self._command_row(tx.conn, int(row.id)))

    def signature(self, sha256: str) -> tuple[str, bytes] | None:
        """(call id, PNG) of a stored signature."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(call_signatures.c.call_id, call_signatures.c.data).where(
                    call_signatures.c.sha256 == sha256
                )
            ).first()
        return (row.call_id, bytes(row.data)) if row is not None else None

    def _translated(self, outcome: Outcome) -> dict[str, Any]:
        if not outcome.pin_block or not outcome.ksn or not outcome.pan:
            raise InvalidArgument("pin_block: a PIN outcome carries pin_block, ksn and pan")
        if not (outcome.pan.isdigit() and 12 <= len(outcome.pan) <= 19):
            raise InvalidArgument("pan: 12 to 19 digits")
        if self.translate_pin is None:
            return {
                "completion": "device_not_ready",
                "code": "hsm_unavailable",
                "detail": "this server has no HSM configured for PIN translation",
            }
        try:
            block, fmt, zpk = self.translate_pin(
                outcome.pan, outcome.pin_block, outcome.ksn, outcome.pin_block_format
            )
        except TranslationFailed as exc:
            return {"completion": "invalid_data", "code": exc.code, "detail": exc.message}
        return {"pin_block": block, "pin_block_format": fmt, "zpk_name": zpk}

    @staticmethod
    def _signature(outcome: Outcome, row: Row[Any]) -> dict[str, Any]:
        data = outcome.signature_png
        if not data:
            raise InvalidArgument("signature_png: a signature outcome carries the PNG")
        if len(data) > MAX_SIGNATURE_BYTES:
            raise InvalidArgument(f"signature_png: at most {MAX_SIGNATURE_BYTES} bytes")
        if not data.startswith(PNG_MAGIC):
            raise InvalidArgument("signature_png: not a PNG image")
        digest = hashlib.sha256(data).hexdigest()
        if outcome.signature_sha256 and outcome.signature_sha256 != digest:
            raise InvalidArgument("signature_sha256: does not match the image (damaged on the way)")
        return {
            "sha256": digest,
            "call_id": row.call_id,
            "command_id": int(row.id),
            "content_type": "image/png",
            "size": len(data),
            "data": data,
            "confirmed": json.dumps({"title": row.title, "lines": json.loads(row.lines)}),
        }

    def expire_ringing(self) -> list[str]:
        """Calls that rang unanswered past the ring timeout: back to the head of the queue
        (they keep their arrival time), the teller marked away, the call routed again."""
        cutoff = self._clock() - timedelta(seconds=self.ring_timeout)
        with self.engine.connect() as conn:
            due = [
                r.call_id
                for r in conn.execute(
                    select(calls.c.call_id).where(
                        calls.c.state == RINGING, calls.c.routed_at < cutoff
                    )
                )
            ]
        return [call_id for call_id in due if self._unring(call_id, cutoff)]

    @store.retrying
    def _unring(self, call_id: str, cutoff: datetime) -> bool:
        with self._tx() as tx:
            row = self._call_or_404(tx.conn, call_id, lock=True)
            if row.state != RINGING or row.routed_at is None or row.routed_at >= cutoff:
                return False
            tx.conn.execute(
                update(calls)
                .where(calls.c.call_id == call_id, calls.c.state == RINGING)
                .values(state=QUEUED, teller_id=None, routed_at=None, updated_at=tx.now)
            )
            self.dispatch._release(tx, row.teller_id, pull=False)
            tx.conn.execute(
                update(tellers)
                .where(tellers.c.teller_id == row.teller_id)
                .values(away=True, updated_at=tx.now)
            )
            tx.event(
                "away",
                branch=row.branch,
                teller_id=row.teller_id,
                detail=f"teller {row.teller_id} did not answer call {call_id}: marked away",
            )
            self._route(tx, call_id, row.branch, row.business_type)
            return True

    def _check_off_duty(self, conn: Connection, teller_id: str) -> None:
        held = conn.execute(
            select(calls.c.call_id, calls.c.state).where(
                calls.c.teller_id == teller_id, calls.c.state.in_(HELD)
            )
        ).first()
        if held is not None:
            raise FailedPrecondition(
                f"on_duty: teller {teller_id} is on call {held.call_id} ({held.state}); "
                "end it first"
            )

    # -- routing ---------------------------------------------------------------------------

    def match_queued(self) -> int:
        """Give queued calls to free tellers (a sweep, after anything that was missed)."""
        matched = 0
        with self.engine.connect() as conn:
            pending = conn.execute(
                select(calls.c.call_id, calls.c.branch, calls.c.business_type)
                .where(calls.c.state == QUEUED)
                .order_by(calls.c.created_at, calls.c.call_id)
                .limit(100)
            ).all()
        for row in pending:
            if self._route_again(row.call_id, row.branch, row.business_type):
                matched += 1
        return matched

    @store.retrying
    def _route_again(self, call_id: str, branch: str, business_type: str) -> bool:
        with self._tx() as tx:
            return self._route(tx, call_id, branch, business_type)

    def _route(self, tx: store.Tx, call_id: str, branch: str, business_type: str) -> bool:
        """Ring a free teller with the skill (routing.choose_teller); False: stays queued."""
        teller_id = self._ring(tx, branch, business_type, self._strategy(tx.conn, branch))
        if teller_id is None:
            return False
        done = tx.conn.execute(
            _RING,
            {"b_call_id": call_id, "b_teller_id": teller_id, "b_now": tx.now},
        )
        if done.rowcount != 1:
            raise FailedPrecondition(f"call {call_id} changed meanwhile; try again")
        return True

    def _ring(self, tx: store.Tx, branch: str, business_type: str, strategy: str) -> str | None:
        """Take a free teller of the branch with the skill (routing.choose_teller among the
        first candidates in strategy order); None if every one is busy."""
        for _page in range(RING_PAGES):
            candidates = self.dispatch._free_tellers(tx.conn, branch, business_type, strategy)
            full = len(candidates) >= (
                service.RANDOM_CANDIDATES if strategy == RANDOM else service.CANDIDATES
            )
            while candidates:
                choice = routing.choose_teller(
                    candidates, business_type, strategy, rng=self.dispatch._rng
                )
                if choice is None:
                    return None
                if self.dispatch._take(tx, choice.teller_id, free=True):
                    return choice.teller_id
                candidates = [c for c in candidates if c.teller_id != choice.teller_id]
            if not full:
                return None
            # Every candidate read was taken meanwhile; the next read finds others.
        return None

    def _pull_call(self, tx: store.Tx, row: Row[Any], skills: tuple[str, ...]) -> bool:
        """A teller just became free (``row``, locked): ring them with the oldest queued call
        of their branch they can take."""
        if not skills:
            return False
        call = self._next_queued(tx, row.branch_id, skills)
        if call is None or not self.dispatch._take(tx, row.teller_id, free=True):
            return False
        tx.conn.execute(
            _RING,
            {"b_call_id": call.call_id, "b_teller_id": row.teller_id, "b_now": tx.now},
        )
        return True

    def _next_queued(self, tx: store.Tx, branch: str, skills: Sequence[str]) -> Row[Any] | None:
        """The oldest queued call of the branch with one of ``skills``, locked, skipping the
        calls other transactions hold.

        Its id comes from the head of each skill's queue (an index read of one row each,
        however long the queues); the head found locked by another transaction, the whole
        queue is read in order instead, as the skip demands.
        """
        if tx.postgres:
            found = tx.conn.execute(
                _PG_NEXT_QUEUED, {"b_branch": branch, "b_skills": list(skills)}
            ).first()
            if found is None:
                return None  # nothing queued with these skills
            if found.call_id is not None:
                return found
        else:
            # SQLite: one writer at a time, nothing to skip.
            params: dict[str, Any] = {"b_branch": branch}
            params.update({f"b_skill_{i}": skill for i, skill in enumerate(skills)})
            return tx.conn.execute(_sqlite_next_queued(len(skills)), params).first()
        return tx.conn.execute(
            _NEXT_QUEUED_IN_ORDER, {"b_branch": branch, "b_skills": list(skills)}
        ).first()

    def _finish(self, tx: store.Tx, row: Row[Any], state: str, reason: str) -> Row[Any]:
        """End the call (the row as written); its teller is free for the next."""
        done = tx.conn.execute(
            _FINISH,
            {
                "b_call_id": row.call_id,
                "b_expect": row.state,
                "b_state": state,
                "b_reason": reason,
                "b_now": tx.now,
            },
        ).first()
        if done is None:
            raise FailedPrecondition(f"call {row.call_id} changed meanwhile; try again")
        if row.state in HELD and row.teller_id:
            # The teller is free again: the next queued call (or task) is theirs.
            self.dispatch._release(tx, row.teller_id, handled=row.state == ACTIVE, pull=True)
        return done

    def _strategy(self, conn: Connection, branch: str) -> str:
        found = conn.execute(_BRANCH_STRATEGY, {"b_branch_id": branch}).first()
        return (found.routing_strategy if found is not None else None) or self.dispatch.strategy

    # -- position and wait -----------------------------------------------------------------

    def _positions(
        self, conn: Connection, queues: Iterable[tuple[str, str]]
    ) -> dict[str, tuple[int, int]]:
        """call id -> (position, estimated wait seconds) for the queued calls of these
        (branch, business type) queues."""
        out: dict[str, tuple[int, int]] = {}
        for branch, business_type in queues:
            ids = [
                r.call_id
                for r in conn.execute(
                    _QUEUE_IDS, {"b_branch": branch, "b_business_type": business_type}
                )
            ]
            if not ids:
                continue
            handle = self._handle_seconds(conn, branch)
            serving = self._serving(conn, branch, business_type)
            for i, call_id in enumerate(ids, start=1):
                out[call_id] = (i, estimated_wait(i, handle, serving))
        return out

    @staticmethod
    def _handle_seconds(conn: Connection, branch: str) -> float:
        rows = conn.execute(_LAST_HANDLED, {"b_branch": branch}).all()
        spans = [(r.ended_at - r.answered_at).total_seconds() for r in rows]
        return sum(spans) / len(spans) if spans else float(DEFAULT_HANDLE_SECONDS)

    def _with_position(self, row: Row[Any], positions: dict[str, tuple[int, int]]) -> CallView:
        position, wait = positions.get(row.call_id, (0, 0))
        return _call_view(row, position, wait)

    def _view(self, conn: Connection, row: Row[Any]) -> CallView:
        if row.state != QUEUED:
            return _call_view(row)
        return self._with_position(row, self._positions_of(conn, [row]))

    def _positions_of(
        self, conn: Connection, rows: Sequence[Row[Any]]
    ) -> dict[str, tuple[int, int]]:
        """(position, estimated wait) of these queued calls: one count each over their
        queue's index, however long the queue."""
        out: dict[str, tuple[int, int]] = {}
        handles: dict[str, float] = {}
        for row in rows:
            if row.branch not in handles:
                handles[row.branch] = self._handle_seconds(conn, row.branch)
            # The calls ahead and the tellers serving the queue, in one query.
            found = conn.execute(
                _AHEAD_AND_SERVING,
                {
                    "b_branch": row.branch,
                    "b_business_type": row.business_type,
                    "b_created_at": row.created_at,
                    "b_call_id": row.call_id,
                },
            ).one()
            position = int(found.ahead) + 1
            out[row.call_id] = (
                position,
                estimated_wait(position, handles[row.branch], int(found.serving)),
            )
        return out

    @staticmethod
    def _serving(conn: Connection, branch: str, business_type: str) -> int:
        """On-duty tellers of the branch with the skill."""
        return int(
            conn.execute(
                _SERVING, {"b_branch": branch, "b_business_type": business_type}
            ).scalar_one()
        )

    # -- checks ----------------------------------------------------------------------------

    @staticmethod
    def _require_terminal(actor: Actor) -> None:
        if actor.role != TERMINAL:
            raise PermissionDenied(f"a call is requested by a terminal as itself; not by {actor}")

    def _teller(self, actor: Actor) -> Any:
        if actor.role != TELLER:
            raise PermissionDenied(f"calls are answered by tellers; not by {actor}")
        record = self.dispatch.staff(actor)
        return record

    @staticmethod
    def _call_or_404(conn: Connection, call_id: str, *, lock: bool = False) -> Row[Any]:
        row = conn.execute(_LOCK_CALL if lock else _READ_CALL, {"b_call_id": call_id}).first()
        if row is None:
            raise NotFound(f"call_id: no call {call_id!r}")
        return row

    def _open_call_of(
        self, conn: Connection, terminal: Actor, call_id: str, *, lock: bool = False
    ) -> Row[Any]:
        """A call of this very terminal: a terminal acts only as itself."""
        check.ident("call_id", call_id)
        row = self._call_or_404(conn, call_id, lock=lock)
        if row.terminal_id != terminal.id:
            raise PermissionDenied(
                f"a terminal acts only as itself: call {call_id} is terminal "
                f"{row.terminal_id}'s, not {terminal}'s"
            )
        return row

    def _held_call(
        self,
        conn: Connection,
        teller: Actor,
        call_id: str,
        *,
        lock: bool = False,
        any_state: bool = False,
    ) -> Row[Any]:
        """A call the teller holds: a teller drives only the terminal of their own call."""
        check.ident("call_id", call_id)
        row = self._call_or_404(conn, call_id, lock=lock)
        if row.teller_id != teller.id:
            raise PermissionDenied(
                f"a teller drives only the terminal of their own call: call {call_id} "
                + (f"is teller {row.teller_id}'s" if row.teller_id else "has no teller")
                + f", not teller {teller.id}'s"
            )
        if not any_state and row.state not in HELD:
            raise FailedPrecondition(f"call_id: call {call_id} is {row.state}")
        return row

    @staticmethod
    def _command_row(conn: Connection, command_id: int) -> Row[Any]:
        row = conn.execute(select(call_commands).where(call_commands.c.id == command_id)).first()
        if row is None:
            raise NotFound(f"command_id: no command {command_id}")
        return row

    @staticmethod
    def _command(conn: Connection, row: Row[Any]) -> CommandView:
        size = 0
        if row.signature_sha256:
            size = int(
                conn.execute(
                    select(call_signatures.c.size).where(
                        call_signatures.c.sha256 == row.signature_sha256
                    )
                ).scalar_one()
            )
        return _command_view(row, size)


def estimated_wait(position: int, handle_seconds: float, serving: int) -> int:
    """Seconds until a call at ``position`` is answered: the calls ahead of it (and its own
    turn coming up) shared among the tellers serving its queue."""
    return int(math.ceil(position * handle_seconds / max(1, serving)))
