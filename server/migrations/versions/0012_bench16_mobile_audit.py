"""The audit of mobile-banking enrolments (``branchline-server mobile``): ``mobile_audit``.

Revision ID: 0012_bench16_mobile_audit
Revises: 0011_phones
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0012_bench16_mobile_audit"
down_revision: str | None = "0011_phones"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None


def upgrade() -> None:
    op.create_table(
        "mobile_audit",
        sa.Column(
            "audit_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("audit_id", name="pk_mobile_audit"),
    )
    op.create_index("ix_mobile_audit_customer_id", "mobile_audit", ["customer_id"])


def downgrade() -> None:
    op.drop_index("ix_mobile_audit_customer_id", table_name="mobile_audit")
    op.drop_table("mobile_audit")
