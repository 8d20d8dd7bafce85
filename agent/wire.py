"""Conversions between the agent's plain types and branchline.v1 messages."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from branchline.agent.device_owner import DeviceSnapshot
from branchline.common.enum_maps import DEVICE_STATUS_TO_PB
from branchline.v1 import common_pb2


def device_to_pb(snapshot: DeviceSnapshot) -> common_pb2.Device:
    updated = Timestamp()
    updated.FromDatetime(snapshot.updated_at)
    return common_pb2.Device(
        name=snapshot.name,
        driver=snapshot.driver,
        status=DEVICE_STATUS_TO_PB[snapshot.status],
        detail=snapshot.detail,
        facts=snapshot.facts,
        capabilities=snapshot.capabilities,
        updated_at=updated,
    )
