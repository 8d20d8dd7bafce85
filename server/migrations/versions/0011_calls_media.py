"""The back office's video on the customer's screen: the WebRTC signalling the desk and the
terminal exchange for one tube transaction (TubeDesk.SendDeskSignal / WatchDeskSignals and
TerminalLink desk_signal). The server relays it; the media goes browser to browser.

On the calls-media branch, after 0010_device_history (any head; it refers to no other
table).

Revision ID: 0011_calls_media
Revises: 0010_device_history
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0011_calls_media"
down_revision: str | None = "0010_device_history"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None


def upgrade() -> None:
    op.create_table(
        "tube_desk_signals",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("txn_id", sa.String(64), nullable=False),
        sa.Column("terminal_id", sa.String(128), nullable=False),
        sa.Column("sender", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tube_desk_signals"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_tube_desk_signals_txn_id_id", "tube_desk_signals", ["txn_id", "id"])
    op.create_index(
        "ix_tube_desk_signals_terminal_id_id", "tube_desk_signals", ["terminal_id", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_tube_desk_signals_terminal_id_id", table_name="tube_desk_signals")
    op.drop_index("ix_tube_desk_signals_txn_id_id", table_name="tube_desk_signals")
    op.drop_table("tube_desk_signals")
