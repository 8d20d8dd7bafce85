"""Tube transactions: the server's record of each, its events, and incidents for people.

Revision ID: 0006_tube
Revises: 0005_calls
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006_tube"
down_revision: str | None = "0005_calls"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None

_ID = 64


def _big_id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _time() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "tube_transactions",
        sa.Column("txn_id", sa.String(_ID), nullable=False),
        sa.Column("terminal_id", sa.String(128), nullable=False),
        sa.Column("branch", sa.String(_ID), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("pending", sa.String(16), nullable=True),
        sa.Column("customer_id", sa.String(_ID), nullable=False),
        sa.Column("account_id", sa.String(_ID), nullable=False),
        sa.Column("open_hash", sa.String(64), nullable=False),
        sa.Column("requested_kind", sa.String(8), nullable=False),
        sa.Column("requested_currency", sa.String(3), nullable=False),
        sa.Column("requested_minor", sa.BigInteger(), nullable=False),
        sa.Column("requested_bill_id", sa.String(_ID), nullable=True),
        sa.Column("requested_instrument", sa.String(32), nullable=True),
        sa.Column("requested_maturity", sa.String(10), nullable=True),
        sa.Column("counted_kind", sa.String(8), nullable=True),
        sa.Column("counted_currency", sa.String(3), nullable=True),
        sa.Column("counted_minor", sa.BigInteger(), nullable=True),
        sa.Column("counted_bill_id", sa.String(_ID), nullable=True),
        sa.Column("counted_instrument", sa.String(32), nullable=True),
        sa.Column("counted_maturity", sa.String(10), nullable=True),
        sa.Column("rate_version", sa.BigInteger(), nullable=True),
        sa.Column("rate", sa.String(32), nullable=False),
        sa.Column("account_currency", sa.String(3), nullable=False),
        sa.Column("account_minor", sa.BigInteger(), nullable=False),
        sa.Column("carrier_id", sa.BigInteger(), nullable=True),
        sa.Column("hold_id", sa.String(32), nullable=True),
        sa.Column("entry_id", sa.BigInteger(), nullable=True),
        sa.Column("balance_after_minor", sa.BigInteger(), nullable=True),
        sa.Column("available_after_minor", sa.BigInteger(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("reason", sa.String(_ID), nullable=False),
        sa.Column("incident_id", sa.BigInteger(), nullable=True),
        sa.Column("pan_masked", sa.String(32), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("txn_id", name="pk_tube_transactions"),
    )
    op.create_index(
        "ix_tube_transactions_branch_state_created_at",
        "tube_transactions",
        ["branch", "state", "created_at"],
    )
    op.create_index(
        "ix_tube_transactions_terminal_id_state", "tube_transactions", ["terminal_id", "state"]
    )
    op.create_index(
        "ix_tube_transactions_state_updated_at", "tube_transactions", ["state", "updated_at"]
    )
    op.create_table(
        "tube_events",
        sa.Column("id", _big_id(), autoincrement=True, nullable=False),
        sa.Column("txn_id", sa.String(_ID), nullable=False),
        sa.Column("terminal_id", sa.String(128), nullable=False),
        sa.Column("branch", sa.String(_ID), nullable=False),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tube_events"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_tube_events_branch_id", "tube_events", ["branch", "id"])
    op.create_index("ix_tube_events_txn_id_id", "tube_events", ["txn_id", "id"])
    op.create_table(
        "tube_incidents",
        sa.Column("id", _big_id(), autoincrement=True, nullable=False),
        sa.Column("branch", sa.String(_ID), nullable=False),
        sa.Column("terminal_id", sa.String(128), nullable=False),
        sa.Column("txn_id", sa.String(_ID), nullable=False),
        sa.Column("kind", sa.String(_ID), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("opened_at", _time(), nullable=False),
        sa.Column("resolved_at", _time(), nullable=True),
        sa.Column("resolved_by", sa.String(200), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_tube_incidents"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_tube_incidents_branch_resolved_at_id",
        "tube_incidents",
        ["branch", "resolved_at", "id"],
    )
    op.create_index("ix_tube_incidents_txn_id_kind", "tube_incidents", ["txn_id", "kind"])


def downgrade() -> None:
    op.drop_table("tube_incidents")
    op.drop_table("tube_events")
    op.drop_table("tube_transactions")
