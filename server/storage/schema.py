"""Tables of the fleet registry.

The migrations in ``branchline/server/migrations`` create these; a test compares the two so
they cannot drift apart.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.types import TypeDecorator

# Deterministic constraint names, so later migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend.

    SQLite has no timezone type: values are stored as naive UTC and made aware again on
    the way out, so callers never see a naive datetime and comparisons stay correct.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


metadata = MetaData(naming_convention=NAMING_CONVENTION)

terminals = Table(
    "terminals",
    metadata,
    Column("terminal_id", String(128), primary_key=True),
    Column("branch", String(128), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("agent_version", String(64), nullable=False),
    Column("service_state", String(64), nullable=False),
    Column("online", Boolean, nullable=False),
    # The server replica holding the terminal's stream; guards against a stale replica
    # marking a terminal disconnected after it reconnected elsewhere.
    Column("connected_replica", String(128), nullable=True),
    Column("registered_at", UtcDateTime, nullable=False),
    Column("last_seen_at", UtcDateTime, nullable=False),
)
Index("ix_terminals_branch", terminals.c.branch)
# The heartbeat sweep looks only at online terminals.
Index("ix_terminals_online_last_seen_at", terminals.c.online, terminals.c.last_seen_at)

devices = Table(
    "devices",
    metadata,
    Column(
        "terminal_id",
        String(128),
        ForeignKey("terminals.terminal_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("name", String(64), primary_key=True),
    Column("driver", String(128), nullable=False),
    Column("status", String(64), nullable=False),
    Column("detail", Text, nullable=False),
    # JSON objects of string to string, kept as text so both backends store them alike.
    Column("facts", Text, nullable=False),
    Column("capabilities", Text, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# Append-only: watch streams on every replica tail it by id. No foreign key, so the log
# outlives any terminal row.
fleet_events = Table(
    "fleet_events",
    metadata,
    # SQLite autoincrements only an INTEGER primary key; AUTOINCREMENT never reuses an id.
    Column(
        "id",
        BigInteger().with_variant(Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    Column("terminal_id", String(128), nullable=False),
    # Copied from the terminal when written, so a branch-filtered watch needs no join.
    Column("branch", String(128), nullable=False),
    Column("device", String(64), nullable=True),
    Column("kind", String(64), nullable=False),
    Column("detail", Text, nullable=False),
    Column("at", UtcDateTime, nullable=False),
    sqlite_autoincrement=True,
)
Index("ix_fleet_events_branch_id", fleet_events.c.branch, fleet_events.c.id)

# Each change of a device's status or detail, newest read first (Fleet.DeviceHistory); the
# registry keeps the last fleet_history.KEEP_PER_DEVICE of each device. No foreign key: the
# history outlives a device that a re-registration dropped.
device_status_history = Table(
    "device_status_history",
    metadata,
    Column(
        "id",
        BigInteger().with_variant(Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    Column("terminal_id", String(128), nullable=False),
    Column("device", String(64), nullable=False),
    Column("status", String(64), nullable=False),
    Column("detail", Text, nullable=False),
    Column("at", UtcDateTime, nullable=False),
    sqlite_autoincrement=True,
)
Index(
    "ix_device_status_history_terminal_id_id",
    device_status_history.c.terminal_id,
    device_status_history.c.id,
)
Index(
    "ix_device_status_history_terminal_id_device_id",
    device_status_history.c.terminal_id,
    device_status_history.c.device,
    device_status_history.c.id,
)
