"""Phones' jobs and mobile-banking sign-in: ``mobile_jobs``, ``mobile_logins``,
``mobile_credentials``.

Revision ID: 0011_phones
Revises: 0009_mobile
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0011_phones"
down_revision: str | None = "0009_mobile"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None


def upgrade() -> None:
    when = sa.DateTime(timezone=True)
    op.create_table(
        "mobile_credentials",
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("totp_secret", sa.String(128), nullable=False),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("locked_until", when, nullable=True),
        sa.Column("last_totp_step", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name="pk_mobile_credentials"),
    )
    op.create_table(
        "mobile_logins",
        sa.Column("pairing_id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("logged_in_at", when, nullable=False),
        sa.PrimaryKeyConstraint("pairing_id", name="pk_mobile_logins"),
    )
    op.create_table(
        "mobile_jobs",
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("pairing_id", sa.String(64), nullable=False),
        sa.Column("terminal_id", sa.String(128), nullable=False),
        sa.Column("idempotency_key", sa.String(64), nullable=False),
        sa.Column("service", sa.String(32), nullable=False),
        sa.Column("auth", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=True),
        sa.Column("receipt_reference", sa.String(64), nullable=False),
        sa.Column("queue_position", sa.Integer(), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
        sa.Column("created_at", when, nullable=False),
        sa.Column("updated_at", when, nullable=False),
        sa.PrimaryKeyConstraint("job_id", name="pk_mobile_jobs"),
        sa.UniqueConstraint(
            "pairing_id", "idempotency_key", name="uq_mobile_jobs_pairing_id_idempotency_key"
        ),
    )
    op.create_index("ix_mobile_jobs_terminal_id_state", "mobile_jobs", ["terminal_id", "state"])


def downgrade() -> None:
    op.drop_index("ix_mobile_jobs_terminal_id_state", table_name="mobile_jobs")
    op.drop_table("mobile_jobs")
    op.drop_table("mobile_logins")
    op.drop_table("mobile_credentials")
