"""Domain <-> protobuf enum maps, defined once for the agent and the server.

Keys are the domain's string values. The agent's ``DeviceStatus`` and ``ServiceState`` are
``StrEnum``s, so their members look these maps up directly; the server keeps the plain
strings in its records. ``*_FROM_PB`` maps are the inverses (UNSPECIFIED is in neither).
"""

from __future__ import annotations

from branchline.v1 import common_pb2

DEVICE_STATUS_TO_PB: dict[str, common_pb2.DeviceStatus] = {
    "online": common_pb2.DEVICE_STATUS_ONLINE,
    "offline": common_pb2.DEVICE_STATUS_OFFLINE,
    "no_device": common_pb2.DEVICE_STATUS_NO_DEVICE,
    "hardware_error": common_pb2.DEVICE_STATUS_HARDWARE_ERROR,
    "user_error": common_pb2.DEVICE_STATUS_USER_ERROR,
    "busy": common_pb2.DEVICE_STATUS_BUSY,
}
DEVICE_STATUS_FROM_PB: dict[common_pb2.DeviceStatus, str] = {
    v: k for k, v in DEVICE_STATUS_TO_PB.items()
}

SERVICE_STATE_TO_PB: dict[str, common_pb2.ServiceState] = {
    "in_service": common_pb2.SERVICE_STATE_IN_SERVICE,
    "out_of_service": common_pb2.SERVICE_STATE_OUT_OF_SERVICE,
    "maintenance_pending": common_pb2.SERVICE_STATE_MAINTENANCE_PENDING,
    "maintenance": common_pb2.SERVICE_STATE_MAINTENANCE,
    "shutting_down": common_pb2.SERVICE_STATE_SHUTTING_DOWN,
}
SERVICE_STATE_FROM_PB: dict[common_pb2.ServiceState, str] = {
    v: k for k, v in SERVICE_STATE_TO_PB.items()
}

TERMINAL_KIND_TO_PB: dict[str, common_pb2.TerminalKind] = {
    "self_service": common_pb2.TERMINAL_KIND_SELF_SERVICE,
    "mobile_counter": common_pb2.TERMINAL_KIND_MOBILE_COUNTER,
    "back_office": common_pb2.TERMINAL_KIND_BACK_OFFICE,
}
TERMINAL_KIND_FROM_PB: dict[common_pb2.TerminalKind, str] = {
    v: k for k, v in TERMINAL_KIND_TO_PB.items()
}
