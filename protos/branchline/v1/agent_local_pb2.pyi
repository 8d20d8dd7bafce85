from branchline.v1 import common_pb2 as _common_pb2
from branchline.v1 import calls_pb2 as _calls_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AgentStatus(_message.Message):
    __slots__ = ("terminal_id", "branch", "service_state", "server_connected", "server_address", "devices", "service_detail")
    TERMINAL_ID_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    SERVICE_STATE_FIELD_NUMBER: _ClassVar[int]
    SERVER_CONNECTED_FIELD_NUMBER: _ClassVar[int]
    SERVER_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    SERVICE_DETAIL_FIELD_NUMBER: _ClassVar[int]
    terminal_id: str
    branch: str
    service_state: _common_pb2.ServiceState
    server_connected: bool
    server_address: str
    devices: _containers.RepeatedCompositeFieldContainer[_common_pb2.Device]
    service_detail: str
    def __init__(self, terminal_id: _Optional[str] = ..., branch: _Optional[str] = ..., service_state: _Optional[_Union[_common_pb2.ServiceState, str]] = ..., server_connected: _Optional[bool] = ..., server_address: _Optional[str] = ..., devices: _Optional[_Iterable[_Union[_common_pb2.Device, _Mapping]]] = ..., service_detail: _Optional[str] = ...) -> None: ...

class DeviceRequest(_message.Message):
    __slots__ = ("device",)
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    device: str
    def __init__(self, device: _Optional[str] = ...) -> None: ...

class SelfTestResult(_message.Message):
    __slots__ = ("device", "ok", "completion", "detail", "seconds")
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    device: str
    ok: bool
    completion: str
    detail: str
    seconds: float
    def __init__(self, device: _Optional[str] = ..., ok: _Optional[bool] = ..., completion: _Optional[str] = ..., detail: _Optional[str] = ..., seconds: _Optional[float] = ...) -> None: ...

class SetMaintenanceRequest(_message.Message):
    __slots__ = ("on",)
    ON_FIELD_NUMBER: _ClassVar[int]
    on: bool
    def __init__(self, on: _Optional[bool] = ...) -> None: ...

class DeviceCommandRequest(_message.Message):
    __slots__ = ("device", "command", "params_json", "timeout_seconds")
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    PARAMS_JSON_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    device: str
    command: str
    params_json: str
    timeout_seconds: float
    def __init__(self, device: _Optional[str] = ..., command: _Optional[str] = ..., params_json: _Optional[str] = ..., timeout_seconds: _Optional[float] = ...) -> None: ...

class DeviceCommandResult(_message.Message):
    __slots__ = ("device", "command", "completion", "code", "detail", "result_json", "seconds")
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    RESULT_JSON_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    device: str
    command: str
    completion: str
    code: str
    detail: str
    result_json: str
    seconds: float
    def __init__(self, device: _Optional[str] = ..., command: _Optional[str] = ..., completion: _Optional[str] = ..., code: _Optional[str] = ..., detail: _Optional[str] = ..., result_json: _Optional[str] = ..., seconds: _Optional[float] = ...) -> None: ...

class SpyChunk(_message.Message):
    __slots__ = ("device", "direction", "data", "monotonic")
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    MONOTONIC_FIELD_NUMBER: _ClassVar[int]
    device: str
    direction: str
    data: bytes
    monotonic: float
    def __init__(self, device: _Optional[str] = ..., direction: _Optional[str] = ..., data: _Optional[bytes] = ..., monotonic: _Optional[float] = ...) -> None: ...

class AuthenticateRequest(_message.Message):
    __slots__ = ("card_timeout_seconds", "pin_timeout_seconds", "eject_after")
    CARD_TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    PIN_TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    EJECT_AFTER_FIELD_NUMBER: _ClassVar[int]
    card_timeout_seconds: float
    pin_timeout_seconds: float
    eject_after: bool
    def __init__(self, card_timeout_seconds: _Optional[float] = ..., pin_timeout_seconds: _Optional[float] = ..., eject_after: _Optional[bool] = ...) -> None: ...

class AuthenticateResult(_message.Message):
    __slots__ = ("verified", "attempts_left", "locked", "message", "pan_masked", "completion", "code", "session_id", "customer_id", "accounts")
    VERIFIED_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_LEFT_FIELD_NUMBER: _ClassVar[int]
    LOCKED_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PAN_MASKED_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNTS_FIELD_NUMBER: _ClassVar[int]
    verified: bool
    attempts_left: int
    locked: bool
    message: str
    pan_masked: str
    completion: str
    code: str
    session_id: str
    customer_id: str
    accounts: _containers.RepeatedCompositeFieldContainer[CustomerAccount]
    def __init__(self, verified: _Optional[bool] = ..., attempts_left: _Optional[int] = ..., locked: _Optional[bool] = ..., message: _Optional[str] = ..., pan_masked: _Optional[str] = ..., completion: _Optional[str] = ..., code: _Optional[str] = ..., session_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., accounts: _Optional[_Iterable[_Union[CustomerAccount, _Mapping]]] = ...) -> None: ...

class CustomerAccount(_message.Message):
    __slots__ = ("account_id", "kind", "currency", "balance", "available")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    kind: str
    currency: str
    balance: str
    available: str
    def __init__(self, account_id: _Optional[str] = ..., kind: _Optional[str] = ..., currency: _Optional[str] = ..., balance: _Optional[str] = ..., available: _Optional[str] = ...) -> None: ...

class VerifyJournalRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class JournalEntry(_message.Message):
    __slots__ = ("seq", "at", "kind", "fields_json", "prev_hash", "hash")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    FIELDS_JSON_FIELD_NUMBER: _ClassVar[int]
    PREV_HASH_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    seq: int
    at: str
    kind: str
    fields_json: str
    prev_hash: str
    hash: str
    def __init__(self, seq: _Optional[int] = ..., at: _Optional[str] = ..., kind: _Optional[str] = ..., fields_json: _Optional[str] = ..., prev_hash: _Optional[str] = ..., hash: _Optional[str] = ...) -> None: ...

class VerifyJournalResult(_message.Message):
    __slots__ = ("ok", "entries", "first_bad_seq", "reason", "bad_entry")
    OK_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    FIRST_BAD_SEQ_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    BAD_ENTRY_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    entries: int
    first_bad_seq: int
    reason: str
    bad_entry: JournalEntry
    def __init__(self, ok: _Optional[bool] = ..., entries: _Optional[int] = ..., first_bad_seq: _Optional[int] = ..., reason: _Optional[str] = ..., bad_entry: _Optional[_Union[JournalEntry, _Mapping]] = ...) -> None: ...

class ShowJournalRequest(_message.Message):
    __slots__ = ("since", "limit")
    SINCE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    since: int
    limit: int
    def __init__(self, since: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class ShowJournalResult(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[JournalEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[JournalEntry, _Mapping]]] = ...) -> None: ...

class ListOutboxRequest(_message.Message):
    __slots__ = ("limit",)
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    limit: int
    def __init__(self, limit: _Optional[int] = ...) -> None: ...

class OutboxMessage(_message.Message):
    __slots__ = ("seq", "key", "kind", "age_seconds", "attempts", "last_error", "txn_id", "size")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    AGE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    TXN_ID_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    seq: int
    key: str
    kind: str
    age_seconds: float
    attempts: int
    last_error: str
    txn_id: str
    size: int
    def __init__(self, seq: _Optional[int] = ..., key: _Optional[str] = ..., kind: _Optional[str] = ..., age_seconds: _Optional[float] = ..., attempts: _Optional[int] = ..., last_error: _Optional[str] = ..., txn_id: _Optional[str] = ..., size: _Optional[int] = ...) -> None: ...

class ListOutboxResult(_message.Message):
    __slots__ = ("messages", "pending", "oldest_age_seconds", "acknowledged", "last_seq", "oldest_acknowledged_age_seconds", "finished_transactions", "oldest_finished_age_seconds")
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    OLDEST_AGE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ACKNOWLEDGED_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQ_FIELD_NUMBER: _ClassVar[int]
    OLDEST_ACKNOWLEDGED_AGE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    FINISHED_TRANSACTIONS_FIELD_NUMBER: _ClassVar[int]
    OLDEST_FINISHED_AGE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[OutboxMessage]
    pending: int
    oldest_age_seconds: float
    acknowledged: int
    last_seq: int
    oldest_acknowledged_age_seconds: float
    finished_transactions: int
    oldest_finished_age_seconds: float
    def __init__(self, messages: _Optional[_Iterable[_Union[OutboxMessage, _Mapping]]] = ..., pending: _Optional[int] = ..., oldest_age_seconds: _Optional[float] = ..., acknowledged: _Optional[int] = ..., last_seq: _Optional[int] = ..., oldest_acknowledged_age_seconds: _Optional[float] = ..., finished_transactions: _Optional[int] = ..., oldest_finished_age_seconds: _Optional[float] = ...) -> None: ...

class RequestTellerRequest(_message.Message):
    __slots__ = ("business_type", "mode")
    BUSINESS_TYPE_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    business_type: str
    mode: _calls_pb2.CallMode
    def __init__(self, business_type: _Optional[str] = ..., mode: _Optional[_Union[_calls_pb2.CallMode, str]] = ...) -> None: ...

class LeaveQueueRequest(_message.Message):
    __slots__ = ("call_id",)
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    def __init__(self, call_id: _Optional[str] = ...) -> None: ...

class WatchCallRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CallEvent(_message.Message):
    __slots__ = ("kind", "call", "signal", "command")
    KIND_FIELD_NUMBER: _ClassVar[int]
    CALL_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    kind: str
    call: _calls_pb2.Call
    signal: _calls_pb2.CallSignal
    command: _calls_pb2.PeripheralCommand
    def __init__(self, kind: _Optional[str] = ..., call: _Optional[_Union[_calls_pb2.Call, _Mapping]] = ..., signal: _Optional[_Union[_calls_pb2.CallSignal, _Mapping]] = ..., command: _Optional[_Union[_calls_pb2.PeripheralCommand, _Mapping]] = ...) -> None: ...

class SendCallSignalRequest(_message.Message):
    __slots__ = ("call_id", "kind", "payload")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    kind: str
    payload: str
    def __init__(self, call_id: _Optional[str] = ..., kind: _Optional[str] = ..., payload: _Optional[str] = ...) -> None: ...

class SignRequest(_message.Message):
    __slots__ = ("command_id", "confirm", "timeout_seconds")
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    CONFIRM_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    command_id: int
    confirm: bool
    timeout_seconds: float
    def __init__(self, command_id: _Optional[int] = ..., confirm: _Optional[bool] = ..., timeout_seconds: _Optional[float] = ...) -> None: ...

class SignResult(_message.Message):
    __slots__ = ("completion", "code", "detail", "signature_sha256", "signature_size")
    COMPLETION_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_SHA256_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_SIZE_FIELD_NUMBER: _ClassVar[int]
    completion: str
    code: str
    detail: str
    signature_sha256: str
    signature_size: int
    def __init__(self, completion: _Optional[str] = ..., code: _Optional[str] = ..., detail: _Optional[str] = ..., signature_sha256: _Optional[str] = ..., signature_size: _Optional[int] = ...) -> None: ...
