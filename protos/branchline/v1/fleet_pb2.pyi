import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from branchline.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Terminal(_message.Message):
    __slots__ = ("terminal_id", "branch", "kind", "online", "service_state", "agent_version", "registered_at", "last_seen_at", "devices")
    TERMINAL_ID_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ONLINE_FIELD_NUMBER: _ClassVar[int]
    SERVICE_STATE_FIELD_NUMBER: _ClassVar[int]
    AGENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_AT_FIELD_NUMBER: _ClassVar[int]
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    terminal_id: str
    branch: str
    kind: _common_pb2.TerminalKind
    online: bool
    service_state: _common_pb2.ServiceState
    agent_version: str
    registered_at: _timestamp_pb2.Timestamp
    last_seen_at: _timestamp_pb2.Timestamp
    devices: _containers.RepeatedCompositeFieldContainer[_common_pb2.Device]
    def __init__(self, terminal_id: _Optional[str] = ..., branch: _Optional[str] = ..., kind: _Optional[_Union[_common_pb2.TerminalKind, str]] = ..., online: _Optional[bool] = ..., service_state: _Optional[_Union[_common_pb2.ServiceState, str]] = ..., agent_version: _Optional[str] = ..., registered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_seen_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., devices: _Optional[_Iterable[_Union[_common_pb2.Device, _Mapping]]] = ...) -> None: ...

class ListTerminalsRequest(_message.Message):
    __slots__ = ("branch",)
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    branch: str
    def __init__(self, branch: _Optional[str] = ...) -> None: ...

class ListTerminalsResponse(_message.Message):
    __slots__ = ("terminals",)
    TERMINALS_FIELD_NUMBER: _ClassVar[int]
    terminals: _containers.RepeatedCompositeFieldContainer[Terminal]
    def __init__(self, terminals: _Optional[_Iterable[_Union[Terminal, _Mapping]]] = ...) -> None: ...

class GetTerminalRequest(_message.Message):
    __slots__ = ("terminal_id",)
    TERMINAL_ID_FIELD_NUMBER: _ClassVar[int]
    terminal_id: str
    def __init__(self, terminal_id: _Optional[str] = ...) -> None: ...

class WatchTerminalsRequest(_message.Message):
    __slots__ = ("branch",)
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    branch: str
    def __init__(self, branch: _Optional[str] = ...) -> None: ...

class FleetEvent(_message.Message):
    __slots__ = ("event_id", "kind", "detail", "at", "terminal")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_FIELD_NUMBER: _ClassVar[int]
    event_id: int
    kind: str
    detail: str
    at: _timestamp_pb2.Timestamp
    terminal: Terminal
    def __init__(self, event_id: _Optional[int] = ..., kind: _Optional[str] = ..., detail: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., terminal: _Optional[_Union[Terminal, _Mapping]] = ...) -> None: ...

class DeviceHistoryRequest(_message.Message):
    __slots__ = ("terminal_id", "limit")
    TERMINAL_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    terminal_id: str
    limit: int
    def __init__(self, terminal_id: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class DeviceStatusChange(_message.Message):
    __slots__ = ("change_id", "device", "status", "detail", "at")
    CHANGE_ID_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    change_id: int
    device: str
    status: _common_pb2.DeviceStatus
    detail: str
    at: _timestamp_pb2.Timestamp
    def __init__(self, change_id: _Optional[int] = ..., device: _Optional[str] = ..., status: _Optional[_Union[_common_pb2.DeviceStatus, str]] = ..., detail: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class DeviceHistoryResponse(_message.Message):
    __slots__ = ("changes",)
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    changes: _containers.RepeatedCompositeFieldContainer[DeviceStatusChange]
    def __init__(self, changes: _Optional[_Iterable[_Union[DeviceStatusChange, _Mapping]]] = ...) -> None: ...
