"""Recordings: the index of stored recordings by transaction, uploads in progress and the
audit of every viewing, hold and deletion.

On its own branch from 0001_fleet (it refers to no other capability's tables).

Revision ID: 0009_recordings
Revises: 0001_fleet
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0009_recordings"
down_revision: str | None = "0001"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None

_ID = 64


def _time() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "recordings",
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("txn_ref", sa.String(_ID), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("recording_id", sa.String(_ID), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("terminal_id", sa.String(128), nullable=False),
        sa.Column("customer_id", sa.String(_ID), nullable=False),
        sa.Column("media_type", sa.String(32), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("duration_seconds", sa.Float(), nullable=False),
        sa.Column("started_at", _time(), nullable=True),
        sa.Column("ended_at", _time(), nullable=True),
        sa.Column("stored_at", _time(), nullable=False),
        sa.Column("legal_hold", sa.Boolean(), nullable=False),
        sa.Column("hold_reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name="pk_recordings"),
    )
    op.create_index("ix_recordings_txn_ref", "recordings", ["txn_ref"])
    op.create_index("ix_recordings_stored_at", "recordings", ["stored_at"])
    op.create_table(
        "recording_uploads",
        sa.Column("upload_id", sa.String(_ID), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("txn_ref", sa.String(_ID), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("recording_id", sa.String(_ID), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("terminal_id", sa.String(128), nullable=False),
        sa.Column("customer_id", sa.String(_ID), nullable=False),
        sa.Column("media_type", sa.String(32), nullable=False),
        sa.Column("started_at", _time(), nullable=True),
        sa.Column("ended_at", _time(), nullable=True),
        sa.Column("created_at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("upload_id", name="pk_recording_uploads"),
        sa.UniqueConstraint("sha256", name="uq_recording_uploads_sha256"),
    )
    op.create_table(
        "recording_audit",
        sa.Column(
            "audit_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("at", _time(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("txn_ref", sa.String(_ID), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("audit_id", name="pk_recording_audit"),
    )
    op.create_index("ix_recording_audit_sha256", "recording_audit", ["sha256"])


def downgrade() -> None:
    op.drop_index("ix_recording_audit_sha256", table_name="recording_audit")
    op.drop_table("recording_audit")
    op.drop_table("recording_uploads")
    op.drop_index("ix_recordings_stored_at", table_name="recordings")
    op.drop_index("ix_recordings_txn_ref", table_name="recordings")
    op.drop_table("recordings")
