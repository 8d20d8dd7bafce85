"""Device status history: each change of a device's status or detail, per terminal, for
operations' terminal detail (Fleet.DeviceHistory). Bounded by the registry: the last
KEEP_PER_DEVICE changes of each device are kept.

On the fleet branch, after 0001_fleet (it refers to no other capability's tables).

Revision ID: 0010_device_history
Revises: 0001_fleet
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0010_device_history"
down_revision: str | None = "0001"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None


def upgrade() -> None:
    op.create_table(
        "device_status_history",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("terminal_id", sa.String(128), nullable=False),
        sa.Column("device", sa.String(64), nullable=False),
        sa.Column("status", sa.String(64), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_device_status_history"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_device_status_history_terminal_id_id", "device_status_history", ["terminal_id", "id"]
    )
    op.create_index(
        "ix_device_status_history_terminal_id_device_id",
        "device_status_history",
        ["terminal_id", "device", "id"],
    )


def downgrade() -> None:
    op.drop_index(
        "ix_device_status_history_terminal_id_device_id", table_name="device_status_history"
    )
    op.drop_index("ix_device_status_history_terminal_id_id", table_name="device_status_history")
    op.drop_table("device_status_history")
