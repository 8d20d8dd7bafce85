"""Who may act on which call: a terminal only as itself, a teller only on their own call; a
call or command, or NOT_FOUND naming the field."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, select

from branchline.common.errors import FailedPrecondition, NotFound, PermissionDenied, echo
from branchline.server.dispatch import validate as check
from branchline.server.dispatch.call_schema import call_commands, call_signatures
from branchline.server.dispatch.calls import sql
from branchline.server.dispatch.calls.core import CallCore
from branchline.server.dispatch.calls.model import HELD, CommandView, command_view
from branchline.server.dispatch.model import TELLER, Actor, LobbyManager, Teller
from branchline.server.dispatch.tasks.core import TERMINAL


def require_terminal(actor: Actor) -> None:
    if actor.role != TERMINAL:
        raise PermissionDenied(
            f"a call is requested by a terminal as itself; not by {actor}", rule="role"
        )


def teller(core: CallCore, actor: Actor) -> Teller | LobbyManager:
    """The teller's staff record (PermissionDenied without one)."""
    if actor.role != TELLER:
        raise PermissionDenied(f"calls are answered by tellers; not by {actor}", rule="role")
    return core.dispatch.staff(actor)


def call_or_404(conn: Connection, call_id: str, *, lock: bool = False) -> Row[Any]:
    row = conn.execute(sql.LOCK_CALL if lock else sql.READ_CALL, {"b_call_id": call_id}).first()
    if row is None:
        raise NotFound(f"call_id: no call {echo(call_id)}", field="call_id")
    return row


def open_call_of(
    conn: Connection, terminal: Actor, call_id: str, *, lock: bool = False
) -> Row[Any]:
    """A call of this very terminal: a terminal acts only as itself."""
    check.ident("call_id", call_id)
    row = call_or_404(conn, call_id, lock=lock)
    if row.terminal_id != terminal.id:
        raise PermissionDenied(
            f"a terminal acts only as itself: call {call_id} is terminal "
            f"{row.terminal_id}'s, not {terminal}'s",
            rule="terminal_as_itself",
        )
    return row


def held_call(
    conn: Connection, teller: Actor, call_id: str, *, lock: bool = False, any_state: bool = False
) -> Row[Any]:
    """A call the teller holds: a teller drives only the terminal of their own call."""
    check.ident("call_id", call_id)
    row = call_or_404(conn, call_id, lock=lock)
    if row.teller_id != teller.id:
        raise PermissionDenied(
            f"a teller drives only the terminal of their own call: call {call_id} "
            + (f"is teller {row.teller_id}'s" if row.teller_id else "has no teller")
            + f", not teller {teller.id}'s",
            rule="own_call_only",
        )
    if not any_state and row.state not in HELD:
        raise FailedPrecondition(f"call_id: call {call_id} is {row.state}", field="call_id")
    return row


def command_row(conn: Connection, command_id: int) -> Row[Any]:
    row = conn.execute(select(call_commands).where(call_commands.c.id == command_id)).first()
    if row is None:
        raise NotFound(f"command_id: no command {command_id}", field="command_id")
    return row


def command(conn: Connection, row: Row[Any]) -> CommandView:
    size = 0
    if row.signature_sha256:
        size = int(
            conn.execute(
                select(call_signatures.c.size).where(
                    call_signatures.c.sha256 == row.signature_sha256
                )
            ).scalar_one()
        )
    return command_view(row, size)
