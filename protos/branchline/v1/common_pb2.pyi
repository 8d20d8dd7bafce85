import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DeviceStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEVICE_STATUS_UNSPECIFIED: _ClassVar[DeviceStatus]
    DEVICE_STATUS_ONLINE: _ClassVar[DeviceStatus]
    DEVICE_STATUS_OFFLINE: _ClassVar[DeviceStatus]
    DEVICE_STATUS_NO_DEVICE: _ClassVar[DeviceStatus]
    DEVICE_STATUS_HARDWARE_ERROR: _ClassVar[DeviceStatus]
    DEVICE_STATUS_USER_ERROR: _ClassVar[DeviceStatus]
    DEVICE_STATUS_BUSY: _ClassVar[DeviceStatus]

class ServiceState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SERVICE_STATE_UNSPECIFIED: _ClassVar[ServiceState]
    SERVICE_STATE_IN_SERVICE: _ClassVar[ServiceState]
    SERVICE_STATE_OUT_OF_SERVICE: _ClassVar[ServiceState]
    SERVICE_STATE_MAINTENANCE_PENDING: _ClassVar[ServiceState]
    SERVICE_STATE_MAINTENANCE: _ClassVar[ServiceState]
    SERVICE_STATE_SHUTTING_DOWN: _ClassVar[ServiceState]

class TerminalKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TERMINAL_KIND_UNSPECIFIED: _ClassVar[TerminalKind]
    TERMINAL_KIND_SELF_SERVICE: _ClassVar[TerminalKind]
    TERMINAL_KIND_MOBILE_COUNTER: _ClassVar[TerminalKind]
    TERMINAL_KIND_BACK_OFFICE: _ClassVar[TerminalKind]
DEVICE_STATUS_UNSPECIFIED: DeviceStatus
DEVICE_STATUS_ONLINE: DeviceStatus
DEVICE_STATUS_OFFLINE: DeviceStatus
DEVICE_STATUS_NO_DEVICE: DeviceStatus
DEVICE_STATUS_HARDWARE_ERROR: DeviceStatus
DEVICE_STATUS_USER_ERROR: DeviceStatus
DEVICE_STATUS_BUSY: DeviceStatus
SERVICE_STATE_UNSPECIFIED: ServiceState
SERVICE_STATE_IN_SERVICE: ServiceState
SERVICE_STATE_OUT_OF_SERVICE: ServiceState
SERVICE_STATE_MAINTENANCE_PENDING: ServiceState
SERVICE_STATE_MAINTENANCE: ServiceState
SERVICE_STATE_SHUTTING_DOWN: ServiceState
TERMINAL_KIND_UNSPECIFIED: TerminalKind
TERMINAL_KIND_SELF_SERVICE: TerminalKind
TERMINAL_KIND_MOBILE_COUNTER: TerminalKind
TERMINAL_KIND_BACK_OFFICE: TerminalKind

class Device(_message.Message):
    __slots__ = ("name", "driver", "status", "detail", "facts", "capabilities", "updated_at")
    class FactsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class CapabilitiesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    DRIVER_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    FACTS_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    name: str
    driver: str
    status: DeviceStatus
    detail: str
    facts: _containers.ScalarMap[str, str]
    capabilities: _containers.ScalarMap[str, str]
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., driver: _Optional[str] = ..., status: _Optional[_Union[DeviceStatus, str]] = ..., detail: _Optional[str] = ..., facts: _Optional[_Mapping[str, str]] = ..., capabilities: _Optional[_Mapping[str, str]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
