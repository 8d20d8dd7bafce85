"""The durable table of cross-replica pushes (migration ``0011_replicas``).

One row per message for a terminal whose stream is on another replica (or on none just
then). The replica holding the stream claims the row (``delivered_at``) in the same
statement that reads it, so a message is queued on one stream once, even while a terminal
flaps between replicas.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, String, Table

from branchline.server.storage.schema import UtcDateTime, metadata

link_deliveries = Table(
    "link_deliveries",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("terminal_id", String(128), nullable=False),
    # A serialized TerminalLink ServerMessage (ack_seq 0).
    Column("body", LargeBinary, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("delivered_at", UtcDateTime, nullable=True),
    Column("delivered_by", String(128), nullable=True),
    sqlite_autoincrement=True,
)
Index("ix_link_deliveries_terminal_id_id", link_deliveries.c.terminal_id, link_deliveries.c.id)
Index("ix_link_deliveries_created_at", link_deliveries.c.created_at)
