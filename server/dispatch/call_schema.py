"""Tables of video-teller calls, on the server's one metadata (migration ``0005_calls``).

A call, its signalling, the teller's device commands with their outcomes and the
customer's signatures all live here, so a restarted server (or another replica) carries
on where the last one stopped: the queue, who holds which call, what is still to be
delivered to a terminal.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from branchline.server.storage.schema import UtcDateTime, metadata

ID = 64
SERIAL = BigInteger().with_variant(Integer(), "sqlite")

calls = Table(
    "calls",
    metadata,
    Column("call_id", String(ID), primary_key=True),
    Column("request_id", String(ID), nullable=False),
    Column("terminal_id", String(128), nullable=False),
    Column("branch", String(ID), nullable=False),
    Column("business_type", String(ID), nullable=False),
    Column("mode", String(16), nullable=False),
    # queued, ringing, active, ended, left
    Column("state", String(16), nullable=False),
    Column("teller_id", String(ID), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("routed_at", UtcDateTime, nullable=True),
    Column("answered_at", UtcDateTime, nullable=True),
    Column("ended_at", UtcDateTime, nullable=True),
    Column("end_reason", Text, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("terminal_id", "request_id"),
)
# A branch's queue of one business type, in order (created_at, then call_id): routing a
# free teller to the oldest call it can take, and each waiting terminal's position (a
# range of this index). The branch's last ended calls, for the expected call length.
# (migration 0008)
Index(
    "ix_calls_branch_state_business_type_created_at_call_id",
    calls.c.branch,
    calls.c.state,
    calls.c.business_type,
    calls.c.created_at,
    calls.c.call_id,
)
Index("ix_calls_branch_state_ended_at", calls.c.branch, calls.c.state, calls.c.ended_at)
Index("ix_calls_teller_id_state", calls.c.teller_id, calls.c.state)
Index("ix_calls_terminal_id_state", calls.c.terminal_id, calls.c.state)

# Signalling relayed between teller and terminal, in order; each side reads the other's.
call_signals = Table(
    "call_signals",
    metadata,
    Column("id", SERIAL, primary_key=True, autoincrement=True),
    Column("call_id", String(ID), ForeignKey("calls.call_id"), nullable=False),
    # teller or terminal
    Column("sender", String(16), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("payload", Text, nullable=False),
    Column("at", UtcDateTime, nullable=False),
    sqlite_autoincrement=True,
)
Index("ix_call_signals_call_id_id", call_signals.c.call_id, call_signals.c.id)

# The teller's device commands and their outcomes (what the teller may see: masked PAN,
# the PIN block under the teller's ZPK, the signature's hash; never a clear PAN or PIN).
call_commands = Table(
    "call_commands",
    metadata,
    Column("id", SERIAL, primary_key=True, autoincrement=True),
    Column("call_id", String(ID), ForeignKey("calls.call_id"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("title", Text, nullable=False),
    Column("lines", Text, nullable=False),  # JSON list
    Column("sent_at", UtcDateTime, nullable=False),
    # Null until the terminal reports the outcome.
    Column("completion", String(32), nullable=True),
    Column("code", String(64), nullable=False),
    Column("detail", Text, nullable=False),
    Column("fields", Text, nullable=False),  # JSON object
    Column("pin_block", LargeBinary, nullable=True),
    Column("pin_block_format", Integer, nullable=True),
    Column("zpk_name", String(ID), nullable=True),
    Column("signature_sha256", String(64), nullable=True),
    Column("done_at", UtcDateTime, nullable=True),
    sqlite_autoincrement=True,
)
Index("ix_call_commands_call_id_id", call_commands.c.call_id, call_commands.c.id)

# The customer's signatures: the call's transaction record, content-hashed.
call_signatures = Table(
    "call_signatures",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("call_id", String(ID), ForeignKey("calls.call_id"), nullable=False),
    Column("command_id", SERIAL, nullable=False),
    Column("content_type", String(64), nullable=False),
    Column("size", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
    # What the customer confirmed (the command's title and lines), as JSON.
    Column("confirmed", Text, nullable=False),
    Column("signed_at", UtcDateTime, nullable=False),
)
Index("ix_call_signatures_call_id", call_signatures.c.call_id)
