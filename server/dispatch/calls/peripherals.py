"""Remote peripherals: a teller's device command to the terminal of their active call, its
outcome (a PIN block translated by the HSM, a signature checked and stored)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, select, update

from branchline.common.errors import MAX_ID, FailedPrecondition, InvalidArgument, NotFound
from branchline.common.redaction import redact_text
from branchline.server.dispatch import validate as check
from branchline.server.dispatch.call_schema import call_commands, call_signatures, calls
from branchline.server.dispatch.calls import access
from branchline.server.dispatch.calls.core import CallCore
from branchline.server.dispatch.calls.model import (
    ACTIVE,
    COMMAND_KINDS,
    COMPLETIONS,
    MAX_FIELDS,
    MAX_LINE,
    MAX_LINES,
    MAX_SIGNATURE_BYTES,
    PNG_MAGIC,
    CommandView,
    Outcome,
    StoredSignature,
    TranslationFailed,
    command_view,
)
from branchline.server.dispatch.model import (
    Actor,
)
from branchline.server.storage import commit_order


def send_command(
    core: CallCore,
    teller: Actor,
    call_id: str,
    kind: str,
    title: str = "",
    lines: Sequence[str] = (),
) -> CommandView:
    """A device command for the terminal of the teller's own active call."""
    access.teller(core, teller)
    if kind not in COMMAND_KINDS:
        raise InvalidArgument("kind", f"must be one of {', '.join(COMMAND_KINDS)}")
    check.text("title", title, MAX_LINE)
    if len(lines) > MAX_LINES:
        raise InvalidArgument("lines", f"at most {MAX_LINES}")
    for i, line in enumerate(lines):
        check.text(f"lines[{i}]", line, MAX_LINE)
    if kind in ("print", "signature") and not (title.strip() or any(s.strip() for s in lines)):
        raise InvalidArgument("lines", f"a {kind} command needs a title or lines to show")
    with core.tx() as tx:
        row = access.held_call(tx.conn, teller, call_id)
        if row.state != ACTIVE:
            raise FailedPrecondition(
                f"call_id: call {call_id} is {row.state}; answer it before using the "
                "terminal's devices",
                field="call_id",
            )
        commit_order.take_turns(tx.conn, f"call_commands:{call_id}")
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
        return command_view(access.command_row(tx.conn, int(command_id)))


def commands_after(core: CallCore, teller: Actor, call_id: str, after_id: int) -> list[CommandView]:
    """The call's commands after ``after_id`` (the teller's own calls only)."""
    with core.engine.connect() as conn:
        access.held_call(conn, teller, call_id, any_state=True)
        rows = conn.execute(
            select(call_commands)
            .where(call_commands.c.call_id == call_id, call_commands.c.id > after_id)
            .order_by(call_commands.c.id)
        ).all()
        return [access.command(conn, r) for r in rows]


def command(core: CallCore, teller: Actor, call_id: str, command_id: int) -> CommandView:
    with core.engine.connect() as conn:
        access.held_call(conn, teller, call_id, any_state=True)
        row = access.command_row(conn, command_id)
        if row.call_id != call_id:
            raise NotFound(
                f"command_id: no command {command_id} in call {call_id}", field="command_id"
            )
        return access.command(conn, row)


def pending_commands(core: CallCore, terminal_id: str, after_id: int = 0) -> list[CommandView]:
    """Commands of the terminal's active call still without an outcome (to deliver)."""
    with core.engine.connect() as conn:
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
        return [command_view(r) for r in rows]


def record_outcome(core: CallCore, terminal: Actor, outcome: Outcome) -> CommandView:
    """The terminal reports a command's outcome; the first report counts.

    A PIN block is translated by the HSM to the teller's zone PIN key and only that is
    kept; a signature is checked against its SHA-256 and stored with the call.
    """
    access.require_terminal(terminal)
    check.one_of("completion", outcome.completion, COMPLETIONS)
    check.fields_map("fields", outcome.fields, MAX_FIELDS)
    check.text("detail", outcome.detail, check.MAX_REASON, secret=True)
    check.text("code", outcome.code, MAX_ID)
    with core.engine.connect() as conn:
        row = access.command_row(conn, outcome.command_id)
        call = access.open_call_of(conn, terminal, row.call_id)
        if outcome.call_id and outcome.call_id != row.call_id:
            raise InvalidArgument(
                "call_id", f"command {outcome.command_id} belongs to call {row.call_id}"
            )
        if row.completion is not None:
            return access.command(conn, row)  # a repeat: the first report stands
        if call.state != ACTIVE:
            raise FailedPrecondition(
                f"call_id: call {call.call_id} is {call.state}", field="call_id"
            )
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
        values.update(translated(core, outcome))
    elif outcome.completion == "success" and row.kind == "signature":
        signature = signature_values(outcome, row)
        values["signature_sha256"] = signature["sha256"]
    elif outcome.pin_block or outcome.signature_png:
        raise InvalidArgument(
            "pin_block" if outcome.pin_block else "signature_png",
            f"not expected for a {outcome.completion} {row.kind} outcome",
        )
    with core.tx() as tx:
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
        return access.command(tx.conn, access.command_row(tx.conn, int(row.id)))


def signature(core: CallCore, sha256: str) -> tuple[str, bytes] | None:
    """(call id, PNG) of a stored signature."""
    with core.engine.connect() as conn:
        row = conn.execute(
            select(call_signatures.c.call_id, call_signatures.c.data).where(
                call_signatures.c.sha256 == sha256
            )
        ).first()
    return (row.call_id, bytes(row.data)) if row is not None else None


def signature_of(core: CallCore, teller: Actor, call_id: str, command_id: int) -> StoredSignature:
    """The PNG a signature command of the teller's own call stored (any state of the call)."""
    access.teller(core, teller)
    if command_id <= 0:
        raise InvalidArgument("command_id", "must be a positive command id")
    with core.engine.connect() as conn:
        access.held_call(conn, teller, call_id, any_state=True)
        row = access.command_row(conn, command_id)
        if row.call_id != call_id:
            raise NotFound(
                f"command_id: no command {command_id} in call {call_id}", field="command_id"
            )
        stored = None
        if row.signature_sha256:
            stored = conn.execute(
                select(call_signatures.c.content_type, call_signatures.c.data).where(
                    call_signatures.c.sha256 == row.signature_sha256
                )
            ).first()
    if stored is None:
        raise NotFound(
            f"command_id: command {command_id} ({row.kind}) stored no signature",
            field="command_id",
        )
    return StoredSignature(
        call_id, command_id, str(row.signature_sha256), str(stored.content_type), bytes(stored.data)
    )


def translated(core: CallCore, outcome: Outcome) -> dict[str, Any]:
    if not outcome.pin_block or not outcome.ksn or not outcome.pan:
        raise InvalidArgument("pin_block", "a PIN outcome carries pin_block, ksn and pan")
    if not (outcome.pan.isdigit() and 12 <= len(outcome.pan) <= 19):
        raise InvalidArgument("pan", "12 to 19 digits")
    if core.translate_pin is None:
        return {
            "completion": "device_not_ready",
            "code": "hsm_unavailable",
            "detail": "this server has no HSM configured for PIN translation",
        }
    try:
        block, fmt, zpk = core.translate_pin(
            outcome.pan, outcome.pin_block, outcome.ksn, outcome.pin_block_format
        )
    except TranslationFailed as exc:
        return {"completion": "invalid_data", "code": exc.code, "detail": exc.message}
    return {"pin_block": block, "pin_block_format": fmt, "zpk_name": zpk}


def signature_values(outcome: Outcome, row: Row[Any]) -> dict[str, Any]:
    data = outcome.signature_png
    if not data:
        raise InvalidArgument("signature_png", "a signature outcome carries the PNG")
    if len(data) > MAX_SIGNATURE_BYTES:
        raise InvalidArgument("signature_png", f"at most {MAX_SIGNATURE_BYTES} bytes")
    if not data.startswith(PNG_MAGIC):
        raise InvalidArgument("signature_png", "not a PNG image")
    digest = hashlib.sha256(data).hexdigest()
    if outcome.signature_sha256 and outcome.signature_sha256 != digest:
        raise InvalidArgument("signature_sha256", "does not match the image (damaged on the way)")
    return {
        "sha256": digest,
        "call_id": row.call_id,
        "command_id": int(row.id),
        "content_type": "image/png",
        "size": len(data),
        "data": data,
        "confirmed": json.dumps({"title": row.title, "lines": json.loads(row.lines)}),
    }
