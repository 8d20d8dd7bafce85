# long-module: every registry transition with the fleet event it appends, so the event log is written in one place
"""The fleet registry: every terminal, its devices, and an append-only log of changes.

Plain functions over a SQLAlchemy engine, so the gRPC servicers, the heartbeat sweep and
tests share one implementation on SQLite and PostgreSQL alike. Several server replicas may
share one PostgreSQL database: each terminal's stream lives on one replica, recorded in
``connected_replica``, and watch streams on any replica tail ``fleet_events`` by id.

Status strings (service state, device status, terminal kind) are opaque here: the caller
picks the names. Every timestamp is a timezone-aware UTC datetime.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Row,
    delete,
    false,
    func,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from branchline.server import fleet_history
from branchline.server.delivery.bus import TOPIC_FLEET, signal_in_transaction
from branchline.server.storage import commit_order
from branchline.server.storage.engine import connect, write_transaction
from branchline.server.storage.schema import devices as devices_table
from branchline.server.storage.schema import fleet_events, terminals

EVENT_REGISTERED = "registered"
EVENT_DISCONNECTED = "disconnected"
EVENT_HEARTBEAT_TIMEOUT = "heartbeat_timeout"
# A heartbeat arrived from a terminal the sweep had marked offline.
EVENT_ONLINE = "online"
EVENT_DEVICE_STATUS = "device_status"
EVENT_SERVICE_STATE = "service_state"

# The service state of a terminal that has not reported one yet.
UNKNOWN_SERVICE_STATE = ""
DEFAULT_EVENT_PAGE = 500

# Arbitrary constant naming the "append to fleet_events" advisory lock in PostgreSQL.
# (commit_order takes it just before COMMIT: do not change it while old replicas run.)
EVENT_LOG_LOCK_KEY = 0x6272_6C6E_6576_6E74  # "brlnevnt"


class UnknownTerminal(LookupError):
    """The terminal has never registered."""


@dataclass(frozen=True)
class DeviceRecord:
    name: str
    driver: str
    status: str
    detail: str = ""
    facts: dict[str, str] = field(default_factory=dict)
    capabilities: dict[str, str] = field(default_factory=dict)
    # When the stored row last changed; set on records the registry returns, ignored on input.
    updated_at: datetime | None = None


@dataclass(frozen=True)
class TerminalRecord:
    terminal_id: str
    branch: str
    kind: str
    agent_version: str
    service_state: str
    online: bool
    # The server replica holding the terminal's stream, None once it disconnected.
    connected_replica: str | None
    # The latest registration, i.e. when the current (or last) connection began.
    registered_at: datetime
    last_seen_at: datetime
    devices: tuple[DeviceRecord, ...] = ()


@dataclass(frozen=True)
class FleetEvent:
    event_id: int
    terminal_id: str
    branch: str
    device: str | None
    kind: str
    detail: str
    at: datetime


def register_terminal(
    engine: Engine,
    terminal_id: str,
    branch: str,
    kind: str,
    agent_version: str,
    devices: Sequence[DeviceRecord],
    replica: str,
    now: datetime,
    *,
    service_state: str | None = None,
) -> TerminalRecord:
    """Record a (re)connection: the terminal is online on ``replica`` with exactly ``devices``.

    ``service_state`` None keeps the stored state (UNKNOWN_SERVICE_STATE for a new
    terminal) for the next heartbeat to set.
    """
    _require_aware(now)
    with write_transaction(engine) as conn:
        values = {
            "terminal_id": terminal_id,
            "branch": branch,
            "kind": kind,
            "agent_version": agent_version,
            "service_state": UNKNOWN_SERVICE_STATE if service_state is None else service_state,
            "online": True,
            "connected_replica": replica,
            "registered_at": now,
            "last_seen_at": now,
        }
        # An upsert, since two replicas may race to register a terminal that flaps between them.
        keep = ["service_state"] if service_state is None else []
        _upsert(conn, terminals, values, ["terminal_id"], keep=keep)
        names = [device.name for device in devices]
        _record_changed_devices(conn, terminal_id, devices, now)
        conn.execute(
            delete(devices_table).where(
                devices_table.c.terminal_id == terminal_id, devices_table.c.name.not_in(names)
            )
        )
        for device in devices:
            _upsert(
                conn,
                devices_table,
                _device_values(terminal_id, device, now),
                ["terminal_id", "name"],
            )
        record = _load_terminal(conn, terminal_id)
        detail = f"agent {agent_version} on replica {replica}"
        _append_events(conn, [_event(terminal_id, branch, None, EVENT_REGISTERED, detail, now)])
    assert record is not None  # written just above, in this transaction
    return record


def _record_changed_devices(
    conn: Connection, terminal_id: str, devices: Sequence[DeviceRecord], now: datetime
) -> None:
    """History entries for the devices a (re)registration reports with a new status."""
    before = {
        row.name: (row.status, row.detail)
        for row in conn.execute(
            select(devices_table.c.name, devices_table.c.status, devices_table.c.detail).where(
                devices_table.c.terminal_id == terminal_id
            )
        )
    }
    for device in devices:
        if before.get(device.name) != (device.status, device.detail):
            fleet_history.record(conn, terminal_id, device.name, device.status, device.detail, now)


def record_heartbeat(engine: Engine, terminal_id: str, service_state: str, now: datetime) -> bool:
    """Note that the terminal is alive; False if it never registered (it should re-register)."""
    _require_aware(now)
    with write_transaction(engine) as conn:
        row = conn.execute(
            select(
                terminals.c.branch,
                terminals.c.service_state,
                terminals.c.online,
                terminals.c.connected_replica,
            )
            .where(terminals.c.terminal_id == terminal_id)
            .with_for_update()
        ).first()
        if row is None:
            return False
        # Back online only while a replica still holds its stream: a late heartbeat after
        # a clean disconnect must not resurrect it.
        revived = not row.online and row.connected_replica is not None
        conn.execute(
            update(terminals)
            .where(terminals.c.terminal_id == terminal_id)
            .values(last_seen_at=now, service_state=service_state, online=row.online or revived)
        )
        events = []
        if revived:
            events.append(
                _event(terminal_id, row.branch, None, EVENT_ONLINE, "heartbeat resumed", now)
            )
        # The first state a terminal reports is no change worth an event.
        if row.service_state not in (service_state, UNKNOWN_SERVICE_STATE):
            detail = f"{row.service_state} -> {service_state}"
            events.append(_event(terminal_id, row.branch, None, EVENT_SERVICE_STATE, detail, now))
        _append_events(conn, events)
        return True


def update_device(engine: Engine, terminal_id: str, device: DeviceRecord, now: datetime) -> bool:
    """Store a device report; True (and an event) only if its status or detail changed.

    A device the terminal did not register with is added (and counts as changed). Raises
    UnknownTerminal if the terminal never registered.
    """
    _require_aware(now)
    new = _device_values(terminal_id, device, now)
    with write_transaction(engine) as conn:
        # Locking the terminal row serialises writers to this terminal's devices.
        branch = conn.execute(
            select(terminals.c.branch)
            .where(terminals.c.terminal_id == terminal_id)
            .with_for_update()
        ).scalar_one_or_none()
        if branch is None:
            raise UnknownTerminal(terminal_id)
        old = conn.execute(
            select(devices_table).where(
                devices_table.c.terminal_id == terminal_id, devices_table.c.name == device.name
            )
        ).first()
        compared = ("driver", "status", "detail", "facts", "capabilities")
        if old is not None and all(old._mapping[key] == new[key] for key in compared):
            return False  # a repeated report: nothing to write
        _upsert(conn, devices_table, new, ["terminal_id", "name"])
        changed = old is None or (old.status, old.detail) != (device.status, device.detail)
        if changed:
            fleet_history.record(conn, terminal_id, device.name, device.status, device.detail, now)
            detail = f"{device.status}: {device.detail}" if device.detail else device.status
            _append_events(
                conn, [_event(terminal_id, branch, device.name, EVENT_DEVICE_STATUS, detail, now)]
            )
        return changed


def mark_disconnected(engine: Engine, terminal_id: str, replica: str, now: datetime) -> bool:
    """The stream on ``replica`` ended; ignored (False) if the terminal has since moved on."""
    _require_aware(now)
    with write_transaction(engine) as conn:
        branch = conn.execute(
            update(terminals)
            .where(terminals.c.terminal_id == terminal_id, terminals.c.connected_replica == replica)
            .values(online=False, connected_replica=None)
            .returning(terminals.c.branch)
        ).scalar_one_or_none()
        if branch is None:
            return False
        detail = f"stream on replica {replica} closed"
        _append_events(conn, [_event(terminal_id, branch, None, EVENT_DISCONNECTED, detail, now)])
        return True


def touch_terminals(engine: Engine, terminal_ids: Sequence[str], now: datetime) -> None:
    """Note that these terminals were heard from at ``now`` (one statement for all)."""
    _require_aware(now)
    ids = list(terminal_ids)
    with write_transaction(engine) as conn:
        # Back online only while a replica still holds its stream (as record_heartbeat).
        revived = conn.execute(
            select(terminals.c.terminal_id, terminals.c.branch).where(
                terminals.c.terminal_id.in_(ids),
                terminals.c.online == false(),
                terminals.c.connected_replica.is_not(None),
            )
        ).all()
        conn.execute(
            update(terminals).where(terminals.c.terminal_id.in_(ids)).values(last_seen_at=now)
        )
        if not revived:
            return
        back = [row.terminal_id for row in revived]
        conn.execute(update(terminals).where(terminals.c.terminal_id.in_(back)).values(online=True))
        _append_events(
            conn,
            [
                _event(row.terminal_id, row.branch, None, EVENT_ONLINE, "heartbeat resumed", now)
                for row in revived
            ],
        )


# A terminal whose stream another replica holds is marked offline here only after this many
# timeouts: that replica's own sweep (which knows what it heard in memory) judges it first;
# this only catches the terminals of a replica that died without its sweep.
FOREIGN_GRACE = 3


def mark_stale_offline(
    engine: Engine,
    timeout_seconds: float,
    now: datetime,
    alive: Sequence[str] = (),
    replica: str | None = None,
) -> list[str]:
    """Mark offline every online terminal silent for longer than ``timeout_seconds``,
    except those in ``alive`` (this replica has heard from them, or holds one of their
    messages). With ``replica`` (the sweeping replica's name), a terminal another replica
    holds must be silent ``FOREIGN_GRACE`` times as long: under load that replica writes
    its terminals' liveness late, and marking them offline from here only made them flap
    (offline, then online at its next flush — two fleet events, each under the event log's
    lock, which serialised the replicas' batches).

    Returns their ids, sorted. Safe to run on every replica at once: each terminal is
    reported by exactly one of them.
    """
    _require_aware(now)
    cutoff = now - timedelta(seconds=timeout_seconds)
    with write_transaction(engine) as conn:
        # Lock in a fixed order, skipping rows another transaction holds (a heartbeat in
        # flight, or another replica's sweep): no deadlocks between concurrent sweeps.
        query = select(terminals.c.terminal_id, terminals.c.branch, terminals.c.last_seen_at)
        query = query.where(terminals.c.online == true(), terminals.c.last_seen_at < cutoff)
        if replica is not None:
            foreign_cutoff = now - timedelta(seconds=timeout_seconds * FOREIGN_GRACE)
            query = query.where(
                or_(
                    terminals.c.connected_replica.is_(None),
                    terminals.c.connected_replica == replica,
                    terminals.c.last_seen_at < foreign_cutoff,
                )
            )
        if alive:
            query = query.where(terminals.c.terminal_id.not_in(list(alive)))
        stale = conn.execute(
            query.order_by(terminals.c.terminal_id).with_for_update(skip_locked=True)
        ).all()
        if not stale:
            return []
        ids = [row.terminal_id for row in stale]
        conn.execute(update(terminals).where(terminals.c.terminal_id.in_(ids)).values(online=False))
        events = [
            _event(
                row.terminal_id,
                row.branch,
                None,
                EVENT_HEARTBEAT_TIMEOUT,
                f"no heartbeat since {row.last_seen_at.isoformat()} (timeout {timeout_seconds:g}s)",
                now,
            )
            for row in stale
        ]
        _append_events(conn, events)
        return ids


def list_terminals(engine: Engine, branch: str | None = None) -> list[TerminalRecord]:
    """Every terminal (of ``branch``; None or "" for all), with devices, sorted by id."""
    query = select(terminals).order_by(terminals.c.terminal_id)
    device_query = select(devices_table).order_by(devices_table.c.terminal_id, devices_table.c.name)
    if branch:
        query = query.where(terminals.c.branch == branch)
        device_query = device_query.join(terminals).where(terminals.c.branch == branch)
    with connect(engine) as conn:
        rows = conn.execute(query).all()
        by_terminal: dict[str, list[DeviceRecord]] = {}
        for device_row in conn.execute(device_query):
            by_terminal.setdefault(device_row.terminal_id, []).append(_device_record(device_row))
    return [_terminal_record(row, by_terminal.get(row.terminal_id, [])) for row in rows]


def get_terminal(engine: Engine, terminal_id: str) -> TerminalRecord | None:
    with connect(engine) as conn:
        return _load_terminal(conn, terminal_id)


def events_after(
    engine: Engine, after_id: int, branch: str | None = None, limit: int = DEFAULT_EVENT_PAGE
) -> list[FleetEvent]:
    """Up to ``limit`` events with id > ``after_id`` (of ``branch``; None or "" for all), oldest first.

    Ids become visible in increasing order (``storage.commit_order``), so a reader that
    remembers the last id it saw never misses an event.
    """
    query = (
        select(fleet_events)
        .where(fleet_events.c.id > after_id)
        .order_by(fleet_events.c.id)
        .limit(limit)
    )
    if branch:
        query = query.where(fleet_events.c.branch == branch)
    with connect(engine) as conn:
        return [
            FleetEvent(
                event_id=row.id,
                terminal_id=row.terminal_id,
                branch=row.branch,
                device=row.device,
                kind=row.kind,
                detail=row.detail,
                at=row.at,
            )
            for row in conn.execute(query)
        ]


def latest_event_id(engine: Engine) -> int:
    """The newest event's id, 0 when there is none: where a new watch stream starts tailing."""
    with connect(engine) as conn:
        return int(conn.execute(select(func.coalesce(func.max(fleet_events.c.id), 0))).scalar_one())


def _require_aware(now: datetime) -> None:
    # Checked up front: a naive time would otherwise fail deep inside the statement.
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"naive datetime {now!r}: pass a timezone-aware datetime")


def _append_events(conn: Connection, events: Iterable[dict[str, Any]]) -> None:
    rows = list(events)
    if not rows:
        return
    # Inserted just before COMMIT under the log's lock (storage.commit_order): ids become
    # visible in order, so a tailing reader skips none, and no lock is held meanwhile.
    commit_order.append(conn, EVENT_LOG, rows)
    # Fleet.WatchTerminals on every replica reads the new rows at once.
    signal_in_transaction(conn, TOPIC_FLEET)


def _insert_events(conn: Connection, rows: list[dict[str, Any]]) -> None:
    conn.execute(fleet_events.insert(), rows)


EVENT_LOG = commit_order.EventLog("fleet_events", EVENT_LOG_LOCK_KEY, _insert_events)


def _event(
    terminal_id: str, branch: str, device: str | None, kind: str, detail: str, at: datetime
) -> dict[str, Any]:
    return {
        "terminal_id": terminal_id,
        "branch": branch,
        "device": device,
        "kind": kind,
        "detail": detail,
        "at": at,
    }


def _upsert(
    conn: Connection,
    table: Any,
    values: dict[str, Any],
    key: list[str],
    keep: Sequence[str] = (),
) -> None:
    """Insert ``values``, or update the row with the same ``key`` except columns in ``keep``."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).values(values)
    changes = {
        name: statement.excluded[name] for name in values if name not in key and name not in keep
    }
    conn.execute(statement.on_conflict_do_update(index_elements=key, set_=changes))


def _device_values(terminal_id: str, device: DeviceRecord, now: datetime) -> dict[str, Any]:
    return {
        "terminal_id": terminal_id,
        "name": device.name,
        "driver": device.driver,
        "status": device.status,
        "detail": device.detail,
        "facts": _dump_map(device.facts),
        "capabilities": _dump_map(device.capabilities),
        "updated_at": now,
    }


def _dump_map(values: Mapping[str, str]) -> str:
    # Sorted keys: equal maps give equal text, so a repeated report compares equal.
    return json.dumps(dict(values), sort_keys=True, separators=(",", ":"))


def _load_map(text_value: str) -> dict[str, str]:
    loaded = json.loads(text_value)
    return {str(key): str(value) for key, value in loaded.items()}


def _load_terminal(conn: Connection, terminal_id: str) -> TerminalRecord | None:
    row = conn.execute(select(terminals).where(terminals.c.terminal_id == terminal_id)).first()
    if row is None:
        return None
    device_rows = conn.execute(
        select(devices_table)
        .where(devices_table.c.terminal_id == terminal_id)
        .order_by(devices_table.c.name)
    )
    return _terminal_record(row, [_device_record(device_row) for device_row in device_rows])


def _device_record(row: Row[Any]) -> DeviceRecord:
    return DeviceRecord(
        name=row.name,
        driver=row.driver,
        status=row.status,
        detail=row.detail,
        facts=_load_map(row.facts),
        capabilities=_load_map(row.capabilities),
        updated_at=row.updated_at,
    )


def _terminal_record(row: Row[Any], device_records: Sequence[DeviceRecord]) -> TerminalRecord:
    return TerminalRecord(
        terminal_id=row.terminal_id,
        branch=row.branch,
        kind=row.kind,
        agent_version=row.agent_version,
        service_state=row.service_state,
        online=bool(row.online),
        connected_replica=row.connected_replica,
        registered_at=row.registered_at,
        last_seen_at=row.last_seen_at,
        devices=tuple(device_records),
    )
