"""Fleet registry: terminals, their devices and the fleet event log.

Revision ID: 0001
Revises:
Create Date: 2025-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None


def upgrade() -> None:
    op.create_table(
        "terminals",
        sa.Column("terminal_id", sa.String(128), nullable=False),
        sa.Column("branch", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("agent_version", sa.String(64), nullable=False),
        sa.Column("service_state", sa.String(64), nullable=False),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("connected_replica", sa.String(128), nullable=True),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("terminal_id", name="pk_terminals"),
    )
    op.create_index("ix_terminals_branch", "terminals", ["branch"])
    op.create_index("ix_terminals_online_last_seen_at", "terminals", ["online", "last_seen_at"])

    op.create_table(
        "devices",
        sa.Column("terminal_id", sa.String(128), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("driver", sa.String(128), nullable=False),
        sa.Column("status", sa.String(64), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("facts", sa.Text(), nullable=False),
        sa.Column("capabilities", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("terminal_id", "name", name="pk_devices"),
        sa.ForeignKeyConstraint(
            ["terminal_id"],
            ["terminals.terminal_id"],
            name="fk_devices_terminal_id_terminals",
            ondelete="CASCADE",
        ),
    )

    op.create_table(
        "fleet_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("terminal_id", sa.String(128), nullable=False),
        sa.Column("branch", sa.String(128), nullable=False),
        sa.Column("device", sa.String(64), nullable=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_fleet_events"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_fleet_events_branch_id", "fleet_events", ["branch", "id"])


def downgrade() -> None:
    op.drop_index("ix_fleet_events_branch_id", table_name="fleet_events")
    op.drop_table("fleet_events")
    op.drop_table("devices")
    op.drop_index("ix_terminals_online_last_seen_at", table_name="terminals")
    op.drop_index("ix_terminals_branch", table_name="terminals")
    op.drop_table("terminals")
