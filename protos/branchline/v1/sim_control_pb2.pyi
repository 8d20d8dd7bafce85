from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListSimDevicesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SimDevice(_message.Message):
    __slots__ = ("name", "path", "plugged", "faults_available", "faults_active", "facts")
    class FactsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    PLUGGED_FIELD_NUMBER: _ClassVar[int]
    FAULTS_AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    FAULTS_ACTIVE_FIELD_NUMBER: _ClassVar[int]
    FACTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    path: str
    plugged: bool
    faults_available: _containers.RepeatedScalarFieldContainer[str]
    faults_active: _containers.RepeatedScalarFieldContainer[str]
    facts: _containers.ScalarMap[str, str]
    def __init__(self, name: _Optional[str] = ..., path: _Optional[str] = ..., plugged: _Optional[bool] = ..., faults_available: _Optional[_Iterable[str]] = ..., faults_active: _Optional[_Iterable[str]] = ..., facts: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ListSimDevicesResponse(_message.Message):
    __slots__ = ("devices",)
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    devices: _containers.RepeatedCompositeFieldContainer[SimDevice]
    def __init__(self, devices: _Optional[_Iterable[_Union[SimDevice, _Mapping]]] = ...) -> None: ...

class SimDeviceRequest(_message.Message):
    __slots__ = ("device",)
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    device: str
    def __init__(self, device: _Optional[str] = ...) -> None: ...

class InjectGarbageRequest(_message.Message):
    __slots__ = ("device", "data")
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    device: str
    data: bytes
    def __init__(self, device: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class SetFaultRequest(_message.Message):
    __slots__ = ("device", "fault", "active")
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    FAULT_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    device: str
    fault: str
    active: bool
    def __init__(self, device: _Optional[str] = ..., fault: _Optional[str] = ..., active: _Optional[bool] = ...) -> None: ...

class ActRequest(_message.Message):
    __slots__ = ("device", "action", "params")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    device: str
    action: str
    params: _containers.ScalarMap[str, str]
    def __init__(self, device: _Optional[str] = ..., action: _Optional[str] = ..., params: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ActResponse(_message.Message):
    __slots__ = ("device", "result")
    class ResultEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    device: SimDevice
    result: _containers.ScalarMap[str, str]
    def __init__(self, device: _Optional[_Union[SimDevice, _Mapping]] = ..., result: _Optional[_Mapping[str, str]] = ...) -> None: ...
