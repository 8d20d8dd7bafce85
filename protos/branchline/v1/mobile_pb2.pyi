import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OpenHandleRequest(_message.Message):
    __slots__ = ("handle", "short_code", "terminal_id")
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    SHORT_CODE_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_ID_FIELD_NUMBER: _ClassVar[int]
    handle: str
    short_code: str
    terminal_id: str
    def __init__(self, handle: _Optional[str] = ..., short_code: _Optional[str] = ..., terminal_id: _Optional[str] = ...) -> None: ...

class PhonePairing(_message.Message):
    __slots__ = ("pairing_id", "terminal_id", "branch", "state", "matching_code", "paired_at", "session_expires_at", "end_reason")
    PAIRING_ID_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_ID_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    MATCHING_CODE_FIELD_NUMBER: _ClassVar[int]
    PAIRED_AT_FIELD_NUMBER: _ClassVar[int]
    SESSION_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    END_REASON_FIELD_NUMBER: _ClassVar[int]
    pairing_id: str
    terminal_id: str
    branch: str
    state: str
    matching_code: str
    paired_at: _timestamp_pb2.Timestamp
    session_expires_at: _timestamp_pb2.Timestamp
    end_reason: str
    def __init__(self, pairing_id: _Optional[str] = ..., terminal_id: _Optional[str] = ..., branch: _Optional[str] = ..., state: _Optional[str] = ..., matching_code: _Optional[str] = ..., paired_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., session_expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_reason: _Optional[str] = ...) -> None: ...

class OpenedPairing(_message.Message):
    __slots__ = ("pairing", "session_token")
    PAIRING_FIELD_NUMBER: _ClassVar[int]
    SESSION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    pairing: PhonePairing
    session_token: str
    def __init__(self, pairing: _Optional[_Union[PhonePairing, _Mapping]] = ..., session_token: _Optional[str] = ...) -> None: ...

class SessionRequest(_message.Message):
    __slots__ = ("session_token", "terminal_id")
    SESSION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_ID_FIELD_NUMBER: _ClassVar[int]
    session_token: str
    terminal_id: str
    def __init__(self, session_token: _Optional[str] = ..., terminal_id: _Optional[str] = ...) -> None: ...

class PhoneServiceList(_message.Message):
    __slots__ = ("terminal_id", "unavailable_reason", "services", "auth_methods", "pairing")
    TERMINAL_ID_FIELD_NUMBER: _ClassVar[int]
    UNAVAILABLE_REASON_FIELD_NUMBER: _ClassVar[int]
    SERVICES_FIELD_NUMBER: _ClassVar[int]
    AUTH_METHODS_FIELD_NUMBER: _ClassVar[int]
    PAIRING_FIELD_NUMBER: _ClassVar[int]
    terminal_id: str
    unavailable_reason: str
    services: _containers.RepeatedScalarFieldContainer[str]
    auth_methods: _containers.RepeatedScalarFieldContainer[str]
    pairing: PhonePairing
    def __init__(self, terminal_id: _Optional[str] = ..., unavailable_reason: _Optional[str] = ..., services: _Optional[_Iterable[str]] = ..., auth_methods: _Optional[_Iterable[str]] = ..., pairing: _Optional[_Union[PhonePairing, _Mapping]] = ...) -> None: ...

class PairingCancel(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PairingQuery(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PairingUpdate(_message.Message):
    __slots__ = ("state", "url", "handle", "short_code", "expires_at", "pairing_id", "matching_code", "last_end_reason")
    STATE_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    SHORT_CODE_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    PAIRING_ID_FIELD_NUMBER: _ClassVar[int]
    MATCHING_CODE_FIELD_NUMBER: _ClassVar[int]
    LAST_END_REASON_FIELD_NUMBER: _ClassVar[int]
    state: str
    url: str
    handle: str
    short_code: str
    expires_at: _timestamp_pb2.Timestamp
    pairing_id: str
    matching_code: str
    last_end_reason: str
    def __init__(self, state: _Optional[str] = ..., url: _Optional[str] = ..., handle: _Optional[str] = ..., short_code: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., pairing_id: _Optional[str] = ..., matching_code: _Optional[str] = ..., last_end_reason: _Optional[str] = ...) -> None: ...
