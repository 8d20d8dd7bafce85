"""Cross-replica pushes: ``link_deliveries``, the durable side of the delivery bus
(``server/delivery``). PostgreSQL NOTIFY carries only a row id; the row carries the message.

On the fleet branch, after 0001_fleet (it refers to no other capability's tables).

Revision ID: 0011_replicas
Revises: 0001_fleet
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0011_replicas"
down_revision: str | None = "0001"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None


def upgrade() -> None:
    op.create_table(
        "link_deliveries",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("terminal_id", sa.String(128), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_by", sa.String(128), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_link_deliveries"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_link_deliveries_terminal_id_id", "link_deliveries", ["terminal_id", "id"])
    op.create_index("ix_link_deliveries_created_at", "link_deliveries", ["created_at"])


def downgrade() -> None:
    op.drop_table("link_deliveries")
