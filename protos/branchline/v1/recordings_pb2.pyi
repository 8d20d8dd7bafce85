import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BeginUploadRequest(_message.Message):
    __slots__ = ("sha256", "size", "txn_ref", "kind", "recording_id", "source", "media_type", "started_at", "ended_at", "session_token")
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    TXN_REF_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    RECORDING_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    ENDED_AT_FIELD_NUMBER: _ClassVar[int]
    SESSION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    sha256: str
    size: int
    txn_ref: str
    kind: str
    recording_id: str
    source: str
    media_type: str
    started_at: _timestamp_pb2.Timestamp
    ended_at: _timestamp_pb2.Timestamp
    session_token: str
    def __init__(self, sha256: _Optional[str] = ..., size: _Optional[int] = ..., txn_ref: _Optional[str] = ..., kind: _Optional[str] = ..., recording_id: _Optional[str] = ..., source: _Optional[str] = ..., media_type: _Optional[str] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ended_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., session_token: _Optional[str] = ...) -> None: ...

class BeginUploadReply(_message.Message):
    __slots__ = ("upload_id", "offset", "already_stored")
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    ALREADY_STORED_FIELD_NUMBER: _ClassVar[int]
    upload_id: str
    offset: int
    already_stored: bool
    def __init__(self, upload_id: _Optional[str] = ..., offset: _Optional[int] = ..., already_stored: _Optional[bool] = ...) -> None: ...

class UploadChunkRequest(_message.Message):
    __slots__ = ("upload_id", "offset", "data")
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    upload_id: str
    offset: int
    data: bytes
    def __init__(self, upload_id: _Optional[str] = ..., offset: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class UploadChunkReply(_message.Message):
    __slots__ = ("offset",)
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    offset: int
    def __init__(self, offset: _Optional[int] = ...) -> None: ...

class CommitUploadRequest(_message.Message):
    __slots__ = ("upload_id",)
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    upload_id: str
    def __init__(self, upload_id: _Optional[str] = ...) -> None: ...

class CommitUploadReply(_message.Message):
    __slots__ = ("sha256", "stored_now", "duration_seconds")
    SHA256_FIELD_NUMBER: _ClassVar[int]
    STORED_NOW_FIELD_NUMBER: _ClassVar[int]
    DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    sha256: str
    stored_now: bool
    duration_seconds: float
    def __init__(self, sha256: _Optional[str] = ..., stored_now: _Optional[bool] = ..., duration_seconds: _Optional[float] = ...) -> None: ...

class Recording(_message.Message):
    __slots__ = ("sha256", "txn_ref", "kind", "recording_id", "source", "terminal_id", "size", "duration_seconds", "legal_hold", "stored_at", "media_type", "hold_reason")
    SHA256_FIELD_NUMBER: _ClassVar[int]
    TXN_REF_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    RECORDING_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_ID_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    LEGAL_HOLD_FIELD_NUMBER: _ClassVar[int]
    STORED_AT_FIELD_NUMBER: _ClassVar[int]
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    HOLD_REASON_FIELD_NUMBER: _ClassVar[int]
    sha256: str
    txn_ref: str
    kind: str
    recording_id: str
    source: str
    terminal_id: str
    size: int
    duration_seconds: float
    legal_hold: bool
    stored_at: _timestamp_pb2.Timestamp
    media_type: str
    hold_reason: str
    def __init__(self, sha256: _Optional[str] = ..., txn_ref: _Optional[str] = ..., kind: _Optional[str] = ..., recording_id: _Optional[str] = ..., source: _Optional[str] = ..., terminal_id: _Optional[str] = ..., size: _Optional[int] = ..., duration_seconds: _Optional[float] = ..., legal_hold: _Optional[bool] = ..., stored_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., media_type: _Optional[str] = ..., hold_reason: _Optional[str] = ...) -> None: ...

class ListRecordingsRequest(_message.Message):
    __slots__ = ("txn_ref", "session_token")
    TXN_REF_FIELD_NUMBER: _ClassVar[int]
    SESSION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    txn_ref: str
    session_token: str
    def __init__(self, txn_ref: _Optional[str] = ..., session_token: _Optional[str] = ...) -> None: ...

class ListRecordingsReply(_message.Message):
    __slots__ = ("recordings",)
    RECORDINGS_FIELD_NUMBER: _ClassVar[int]
    recordings: _containers.RepeatedCompositeFieldContainer[Recording]
    def __init__(self, recordings: _Optional[_Iterable[_Union[Recording, _Mapping]]] = ...) -> None: ...

class FetchRecordingRequest(_message.Message):
    __slots__ = ("sha256", "txn_ref", "session_token", "offset")
    SHA256_FIELD_NUMBER: _ClassVar[int]
    TXN_REF_FIELD_NUMBER: _ClassVar[int]
    SESSION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    sha256: str
    txn_ref: str
    session_token: str
    offset: int
    def __init__(self, sha256: _Optional[str] = ..., txn_ref: _Optional[str] = ..., session_token: _Optional[str] = ..., offset: _Optional[int] = ...) -> None: ...

class RecordingPiece(_message.Message):
    __slots__ = ("recording", "offset", "data")
    RECORDING_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    recording: Recording
    offset: int
    data: bytes
    def __init__(self, recording: _Optional[_Union[Recording, _Mapping]] = ..., offset: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class LegalHoldRequest(_message.Message):
    __slots__ = ("sha256", "hold", "reason")
    SHA256_FIELD_NUMBER: _ClassVar[int]
    HOLD_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    sha256: str
    hold: bool
    reason: str
    def __init__(self, sha256: _Optional[str] = ..., hold: _Optional[bool] = ..., reason: _Optional[str] = ...) -> None: ...

class LegalHoldReply(_message.Message):
    __slots__ = ("recording",)
    RECORDING_FIELD_NUMBER: _ClassVar[int]
    recording: Recording
    def __init__(self, recording: _Optional[_Union[Recording, _Mapping]] = ...) -> None: ...

class SweepRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SweepReply(_message.Message):
    __slots__ = ("deleted", "kept_on_hold")
    DELETED_FIELD_NUMBER: _ClassVar[int]
    KEPT_ON_HOLD_FIELD_NUMBER: _ClassVar[int]
    deleted: _containers.RepeatedScalarFieldContainer[str]
    kept_on_hold: int
    def __init__(self, deleted: _Optional[_Iterable[str]] = ..., kept_on_hold: _Optional[int] = ...) -> None: ...
