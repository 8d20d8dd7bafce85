import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CallMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CALL_MODE_UNSPECIFIED: _ClassVar[CallMode]
    CALL_MODE_SUPER_COUNTER: _ClassVar[CallMode]
    CALL_MODE_VIDEO_SERVICE: _ClassVar[CallMode]
    CALL_MODE_VIDEO_TELLER: _ClassVar[CallMode]

class CallState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CALL_STATE_UNSPECIFIED: _ClassVar[CallState]
    CALL_STATE_QUEUED: _ClassVar[CallState]
    CALL_STATE_RINGING: _ClassVar[CallState]
    CALL_STATE_ACTIVE: _ClassVar[CallState]
    CALL_STATE_ENDED: _ClassVar[CallState]
    CALL_STATE_LEFT: _ClassVar[CallState]
CALL_MODE_UNSPECIFIED: CallMode
CALL_MODE_SUPER_COUNTER: CallMode
CALL_MODE_VIDEO_SERVICE: CallMode
CALL_MODE_VIDEO_TELLER: CallMode
CALL_STATE_UNSPECIFIED: CallState
CALL_STATE_QUEUED: CallState
CALL_STATE_RINGING: CallState
CALL_STATE_ACTIVE: CallState
CALL_STATE_ENDED: CallState
CALL_STATE_LEFT: CallState

class Call(_message.Message):
    __slots__ = ("call_id", "terminal_id", "branch", "business_type", "mode", "state", "teller_id", "position", "estimated_wait_seconds", "created_at", "answered_at", "ended_at", "end_reason", "request_id")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_ID_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    BUSINESS_TYPE_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    TELLER_ID_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_WAIT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    ANSWERED_AT_FIELD_NUMBER: _ClassVar[int]
    ENDED_AT_FIELD_NUMBER: _ClassVar[int]
    END_REASON_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    terminal_id: str
    branch: str
    business_type: str
    mode: CallMode
    state: CallState
    teller_id: str
    position: int
    estimated_wait_seconds: int
    created_at: _timestamp_pb2.Timestamp
    answered_at: _timestamp_pb2.Timestamp
    ended_at: _timestamp_pb2.Timestamp
    end_reason: str
    request_id: str
    def __init__(self, call_id: _Optional[str] = ..., terminal_id: _Optional[str] = ..., branch: _Optional[str] = ..., business_type: _Optional[str] = ..., mode: _Optional[_Union[CallMode, str]] = ..., state: _Optional[_Union[CallState, str]] = ..., teller_id: _Optional[str] = ..., position: _Optional[int] = ..., estimated_wait_seconds: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., answered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ended_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_reason: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class CallList(_message.Message):
    __slots__ = ("calls",)
    CALLS_FIELD_NUMBER: _ClassVar[int]
    calls: _containers.RepeatedCompositeFieldContainer[Call]
    def __init__(self, calls: _Optional[_Iterable[_Union[Call, _Mapping]]] = ...) -> None: ...

class CallSignal(_message.Message):
    __slots__ = ("signal_id", "call_id", "sender", "kind", "payload", "at")
    SIGNAL_ID_FIELD_NUMBER: _ClassVar[int]
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    signal_id: int
    call_id: str
    sender: str
    kind: str
    payload: str
    at: _timestamp_pb2.Timestamp
    def __init__(self, signal_id: _Optional[int] = ..., call_id: _Optional[str] = ..., sender: _Optional[str] = ..., kind: _Optional[str] = ..., payload: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PeripheralCommand(_message.Message):
    __slots__ = ("command_id", "call_id", "kind", "lines", "title", "completion", "code", "detail", "fields", "pin_block", "pin_block_format", "zpk_name", "signature_sha256", "signature_size", "sent_at", "done_at")
    class FieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    PIN_BLOCK_FIELD_NUMBER: _ClassVar[int]
    PIN_BLOCK_FORMAT_FIELD_NUMBER: _ClassVar[int]
    ZPK_NAME_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_SHA256_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_SIZE_FIELD_NUMBER: _ClassVar[int]
    SENT_AT_FIELD_NUMBER: _ClassVar[int]
    DONE_AT_FIELD_NUMBER: _ClassVar[int]
    command_id: int
    call_id: str
    kind: str
    lines: _containers.RepeatedScalarFieldContainer[str]
    title: str
    completion: str
    code: str
    detail: str
    fields: _containers.ScalarMap[str, str]
    pin_block: bytes
    pin_block_format: int
    zpk_name: str
    signature_sha256: str
    signature_size: int
    sent_at: _timestamp_pb2.Timestamp
    done_at: _timestamp_pb2.Timestamp
    def __init__(self, command_id: _Optional[int] = ..., call_id: _Optional[str] = ..., kind: _Optional[str] = ..., lines: _Optional[_Iterable[str]] = ..., title: _Optional[str] = ..., completion: _Optional[str] = ..., code: _Optional[str] = ..., detail: _Optional[str] = ..., fields: _Optional[_Mapping[str, str]] = ..., pin_block: _Optional[bytes] = ..., pin_block_format: _Optional[int] = ..., zpk_name: _Optional[str] = ..., signature_sha256: _Optional[str] = ..., signature_size: _Optional[int] = ..., sent_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., done_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListQueueRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CurrentCallRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AnswerCallRequest(_message.Message):
    __slots__ = ("call_id",)
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    def __init__(self, call_id: _Optional[str] = ...) -> None: ...

class EndCallRequest(_message.Message):
    __slots__ = ("call_id", "reason")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    reason: str
    def __init__(self, call_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class SendSignalRequest(_message.Message):
    __slots__ = ("call_id", "kind", "payload")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    kind: str
    payload: str
    def __init__(self, call_id: _Optional[str] = ..., kind: _Optional[str] = ..., payload: _Optional[str] = ...) -> None: ...

class WatchSignalsRequest(_message.Message):
    __slots__ = ("call_id", "after_id")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_ID_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    after_id: int
    def __init__(self, call_id: _Optional[str] = ..., after_id: _Optional[int] = ...) -> None: ...

class SendCommandRequest(_message.Message):
    __slots__ = ("call_id", "kind", "lines", "title")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    kind: str
    lines: _containers.RepeatedScalarFieldContainer[str]
    title: str
    def __init__(self, call_id: _Optional[str] = ..., kind: _Optional[str] = ..., lines: _Optional[_Iterable[str]] = ..., title: _Optional[str] = ...) -> None: ...

class WatchResultsRequest(_message.Message):
    __slots__ = ("call_id", "after_id")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_ID_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    after_id: int
    def __init__(self, call_id: _Optional[str] = ..., after_id: _Optional[int] = ...) -> None: ...

class GetSignatureRequest(_message.Message):
    __slots__ = ("call_id", "command_id")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    command_id: int
    def __init__(self, call_id: _Optional[str] = ..., command_id: _Optional[int] = ...) -> None: ...

class Signature(_message.Message):
    __slots__ = ("call_id", "command_id", "sha256", "content_type", "png")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    PNG_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    command_id: int
    sha256: str
    content_type: str
    png: bytes
    def __init__(self, call_id: _Optional[str] = ..., command_id: _Optional[int] = ..., sha256: _Optional[str] = ..., content_type: _Optional[str] = ..., png: _Optional[bytes] = ...) -> None: ...

class CallRequest(_message.Message):
    __slots__ = ("request_id", "business_type", "mode")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    BUSINESS_TYPE_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    business_type: str
    mode: CallMode
    def __init__(self, request_id: _Optional[str] = ..., business_type: _Optional[str] = ..., mode: _Optional[_Union[CallMode, str]] = ...) -> None: ...

class CallLeave(_message.Message):
    __slots__ = ("call_id", "reason")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    reason: str
    def __init__(self, call_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class TerminalSignal(_message.Message):
    __slots__ = ("call_id", "kind", "payload")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    kind: str
    payload: str
    def __init__(self, call_id: _Optional[str] = ..., kind: _Optional[str] = ..., payload: _Optional[str] = ...) -> None: ...

class CommandOutcome(_message.Message):
    __slots__ = ("command_id", "call_id", "completion", "code", "detail", "fields", "pin_block", "ksn", "pin_block_format", "pan", "signature_png", "signature_sha256")
    class FieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    PIN_BLOCK_FIELD_NUMBER: _ClassVar[int]
    KSN_FIELD_NUMBER: _ClassVar[int]
    PIN_BLOCK_FORMAT_FIELD_NUMBER: _ClassVar[int]
    PAN_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_PNG_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_SHA256_FIELD_NUMBER: _ClassVar[int]
    command_id: int
    call_id: str
    completion: str
    code: str
    detail: str
    fields: _containers.ScalarMap[str, str]
    pin_block: bytes
    ksn: bytes
    pin_block_format: int
    pan: str
    signature_png: bytes
    signature_sha256: str
    def __init__(self, command_id: _Optional[int] = ..., call_id: _Optional[str] = ..., completion: _Optional[str] = ..., code: _Optional[str] = ..., detail: _Optional[str] = ..., fields: _Optional[_Mapping[str, str]] = ..., pin_block: _Optional[bytes] = ..., ksn: _Optional[bytes] = ..., pin_block_format: _Optional[int] = ..., pan: _Optional[str] = ..., signature_png: _Optional[bytes] = ..., signature_sha256: _Optional[str] = ...) -> None: ...

class CallQuery(_message.Message):
    __slots__ = ("call_id",)
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    def __init__(self, call_id: _Optional[str] = ...) -> None: ...

class CallAck(_message.Message):
    __slots__ = ("call_id", "id")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    id: int
    def __init__(self, call_id: _Optional[str] = ..., id: _Optional[int] = ...) -> None: ...

class CommandForTerminal(_message.Message):
    __slots__ = ("command",)
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    command: PeripheralCommand
    def __init__(self, command: _Optional[_Union[PeripheralCommand, _Mapping]] = ...) -> None: ...
