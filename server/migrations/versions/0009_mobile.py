"""Phone pairings: the handles a terminal's QR carries and the pairings they became.

Revision ID: 0009_mobile
Revises: 0008_call_queue_indexes
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0009_mobile"
down_revision: str | None = "0008_call_queue_indexes"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None


def upgrade() -> None:
    when = sa.DateTime(timezone=True)
    op.create_table(
        "mobile_pairings",
        sa.Column("handle", sa.String(64), nullable=False),
        sa.Column("short_code", sa.String(16), nullable=False),
        sa.Column("terminal_id", sa.String(128), nullable=False),
        sa.Column("branch", sa.String(128), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("issued_at", when, nullable=False),
        sa.Column("expires_at", when, nullable=False),
        sa.Column("paired_at", when, nullable=True),
        sa.Column("matching_code", sa.String(4), nullable=True),
        sa.Column("session_hash", sa.String(64), nullable=True),
        sa.Column("session_expires_at", when, nullable=True),
        sa.Column("ended_at", when, nullable=True),
        sa.Column("end_reason", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("handle", name="pk_mobile_pairings"),
        sa.UniqueConstraint("short_code", name="uq_mobile_pairings_short_code"),
        sa.UniqueConstraint("session_hash", name="uq_mobile_pairings_session_hash"),
    )
    op.create_index(
        "ix_mobile_pairings_terminal_id_state_issued_at",
        "mobile_pairings",
        ["terminal_id", "state", "issued_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_mobile_pairings_terminal_id_state_issued_at", table_name="mobile_pairings")
    op.drop_table("mobile_pairings")
