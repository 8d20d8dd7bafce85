"""Ledger: customers, cards with PIN verification data, request idempotency.

Revision ID: 0003_ledger
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003_ledger"
down_revision: str | None = "0001"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None


def upgrade() -> None:
    op.create_table(
        "customers",
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name="pk_customers"),
    )
    op.create_table(
        "cards",
        sa.Column("card_token", sa.String(64), nullable=False),
        sa.Column("pan_masked", sa.String(32), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("verification_method", sa.String(32), nullable=False),
        sa.Column("pvki", sa.Integer(), nullable=False),
        sa.Column("verification_value", sa.String(16), nullable=False),
        sa.Column("pvk_name", sa.String(64), nullable=False),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("locked", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.customer_id"], name="fk_cards_customer_id_customers"
        ),
        sa.PrimaryKeyConstraint("card_token", name="pk_cards"),
    )
    op.create_table(
        "request_results",
        sa.Column("terminal_id", sa.String(128), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("response", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("terminal_id", "request_id", name="pk_request_results"),
    )


def downgrade() -> None:
    op.drop_table("request_results")
    op.drop_table("cards")
    op.drop_table("customers")
