"""Conversions between the agent's plain types and branchline.v1 messages."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from branchline.agent.device_owner import DeviceSnapshot
from branchline.agent.service_state import ServiceState
from branchline.drivers.base import DeviceStatus
from branchline.v1 import common_pb2

DEVICE_STATUS_TO_PB = {
    DeviceStatus.ONLINE: common_pb2.DEVICE_STATUS_ONLINE,
    DeviceStatus.OFFLINE: common_pb2.DEVICE_STATUS_OFFLINE,
    DeviceStatus.NO_DEVICE: common_pb2.DEVICE_STATUS_NO_DEVICE,
    DeviceStatus.HARDWARE_ERROR: common_pb2.DEVICE_STATUS_HARDWARE_ERROR,
    DeviceStatus.USER_ERROR: common_pb2.DEVICE_STATUS_USER_ERROR,
    DeviceStatus.BUSY: common_pb2.DEVICE_STATUS_BUSY,
}
DEVICE_STATUS_FROM_PB = {v: k for k, v in DEVICE_STATUS_TO_PB.items()}

SERVICE_STATE_TO_PB = {
    ServiceState.IN_SERVICE: common_pb2.SERVICE_STATE_IN_SERVICE,
    ServiceState.OUT_OF_SERVICE: common_pb2.SERVICE_STATE_OUT_OF_SERVICE,
    ServiceState.MAINTENANCE_PENDING: common_pb2.SERVICE_STATE_MAINTENANCE_PENDING,
    ServiceState.MAINTENANCE: common_pb2.SERVICE_STATE_MAINTENANCE,
    ServiceState.SHUTTING_DOWN: common_pb2.SERVICE_STATE_SHUTTING_DOWN,
}
SERVICE_STATE_FROM_PB = {v: k for k, v in SERVICE_STATE_TO_PB.items()}

TERMINAL_KIND_TO_PB = {
    "self_service": common_pb2.TERMINAL_KIND_SELF_SERVICE,
    "mobile_counter": common_pb2.TERMINAL_KIND_MOBILE_COUNTER,
    "back_office": common_pb2.TERMINAL_KIND_BACK_OFFICE,
}


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
