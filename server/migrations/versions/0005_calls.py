"""Video-teller calls: calls, signalling, remote-peripheral commands, signatures.

Revision ID: 0005_calls
Revises: 0004_ledger_money
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005_calls"
down_revision: str | None = "0004_ledger_money"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None

_ID = 64


def _big_id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _time() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("call_id", sa.String(_ID), nullable=False),
        sa.Column("request_id", sa.String(_ID), nullable=False),
        sa.Column("terminal_id", sa.String(128), nullable=False),
        sa.Column("branch", sa.String(_ID), nullable=False),
        sa.Column("business_type", sa.String(_ID), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("teller_id", sa.String(_ID), nullable=True),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("routed_at", _time(), nullable=True),
        sa.Column("answered_at", _time(), nullable=True),
        sa.Column("ended_at", _time(), nullable=True),
        sa.Column("end_reason", sa.Text(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("call_id", name="pk_calls"),
        sa.UniqueConstraint("terminal_id", "request_id", name="uq_calls_terminal_id_request_id"),
    )
    op.create_index(
        "ix_calls_branch_state_business_type_created_at",
        "calls",
        ["branch", "state", "business_type", "created_at"],
    )
    op.create_index("ix_calls_teller_id_state", "calls", ["teller_id", "state"])
    op.create_index("ix_calls_terminal_id_state", "calls", ["terminal_id", "state"])
    op.create_table(
        "call_signals",
        sa.Column("id", _big_id(), autoincrement=True, nullable=False),
        sa.Column("call_id", sa.String(_ID), nullable=False),
        sa.Column("sender", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("at", _time(), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.call_id"], name="fk_call_signals_call_id_calls"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_call_signals"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_call_signals_call_id_id", "call_signals", ["call_id", "id"])
    op.create_table(
        "call_commands",
        sa.Column("id", _big_id(), autoincrement=True, nullable=False),
        sa.Column("call_id", sa.String(_ID), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("lines", sa.Text(), nullable=False),
        sa.Column("sent_at", _time(), nullable=False),
        sa.Column("completion", sa.String(32), nullable=True),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("fields", sa.Text(), nullable=False),
        sa.Column("pin_block", sa.LargeBinary(), nullable=True),
        sa.Column("pin_block_format", sa.Integer(), nullable=True),
        sa.Column("zpk_name", sa.String(_ID), nullable=True),
        sa.Column("signature_sha256", sa.String(64), nullable=True),
        sa.Column("done_at", _time(), nullable=True),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.call_id"], name="fk_call_commands_call_id_calls"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_call_commands"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_call_commands_call_id_id", "call_commands", ["call_id", "id"])
    op.create_table(
        "call_signatures",
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("call_id", sa.String(_ID), nullable=False),
        sa.Column("command_id", _big_id(), nullable=False),
        sa.Column("content_type", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("confirmed", sa.Text(), nullable=False),
        sa.Column("signed_at", _time(), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.call_id"], name="fk_call_signatures_call_id_calls"
        ),
        sa.PrimaryKeyConstraint("sha256", name="pk_call_signatures"),
    )
    op.create_index("ix_call_signatures_call_id", "call_signatures", ["call_id"])


def downgrade() -> None:
    op.drop_table("call_signatures")
    op.drop_table("call_commands")
    op.drop_table("call_signals")
    op.drop_table("calls")
