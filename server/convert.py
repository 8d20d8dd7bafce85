"""Conversions between fleet-registry records and branchline.v1 messages."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from branchline.common.enum_maps import (
    DEVICE_STATUS_FROM_PB,
    DEVICE_STATUS_TO_PB,
    SERVICE_STATE_TO_PB,
    TERMINAL_KIND_TO_PB,
)
from branchline.server.fleet_registry import DeviceRecord, FleetEvent, TerminalRecord
from branchline.v1 import common_pb2, fleet_pb2

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def timestamp(at: datetime | None) -> Timestamp | None:
    """``Timestamp.FromDatetime`` in integer arithmetic (it costs ~0.1 ms; the request path
    converts two per reply); a naive datetime is local time, as before."""
    if at is None:
        return None
    since = (at if at.tzinfo is not None else at.astimezone(UTC)) - _EPOCH
    return Timestamp(seconds=since.days * 86400 + since.seconds, nanos=since.microseconds * 1000)


def device_from_pb(device: common_pb2.Device) -> DeviceRecord:
    return DeviceRecord(
        name=device.name,
        driver=device.driver,
        status=DEVICE_STATUS_FROM_PB.get(device.status, "offline"),
        detail=device.detail,
        facts=dict(device.facts),
        capabilities=dict(device.capabilities),
    )


def device_to_pb(device: DeviceRecord, updated_at: datetime | None = None) -> common_pb2.Device:
    return common_pb2.Device(
        name=device.name,
        driver=device.driver,
        status=DEVICE_STATUS_TO_PB.get(device.status, common_pb2.DEVICE_STATUS_UNSPECIFIED),
        detail=device.detail,
        facts=device.facts,
        capabilities=device.capabilities,
        updated_at=timestamp(updated_at),
    )


def terminal_to_pb(t: TerminalRecord) -> fleet_pb2.Terminal:
    return fleet_pb2.Terminal(
        terminal_id=t.terminal_id,
        branch=t.branch,
        kind=TERMINAL_KIND_TO_PB.get(t.kind, common_pb2.TERMINAL_KIND_UNSPECIFIED),
        online=t.online,
        service_state=SERVICE_STATE_TO_PB.get(
            t.service_state, common_pb2.SERVICE_STATE_UNSPECIFIED
        ),
        agent_version=t.agent_version,
        registered_at=timestamp(t.registered_at),
        last_seen_at=timestamp(t.last_seen_at),
        devices=[device_to_pb(d) for d in t.devices],
    )


def event_to_pb(event: FleetEvent, terminal: TerminalRecord | None) -> fleet_pb2.FleetEvent:
    return fleet_pb2.FleetEvent(
        event_id=event.event_id,
        kind=event.kind,
        detail=event.detail,
        at=timestamp(event.at),
        terminal=terminal_to_pb(terminal) if terminal is not None else None,
    )
