import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from branchline.v1 import common_pb2 as _common_pb2
from branchline.v1 import customer_info_pb2 as _customer_info_pb2
from branchline.v1 import calls_pb2 as _calls_pb2
from branchline.v1 import tube_pb2 as _tube_pb2
from branchline.v1 import mobile_pb2 as _mobile_pb2
from branchline.v1 import cheques_pb2 as _cheques_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TerminalMessage(_message.Message):
    __slots__ = ("seq", "register", "heartbeat", "device_status", "pin_verify", "statement_request", "call_request", "call_leave", "call_signal", "command_outcome", "call_query", "tube_open", "tube_event", "tube_query", "pairing_cancel", "pairing_query", "phone_job_update", "cheque_start", "cheque_id_card", "cheque_face", "cheque_order", "cheque_leaves", "cheque_finish", "cheque_query")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    REGISTER_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    DEVICE_STATUS_FIELD_NUMBER: _ClassVar[int]
    PIN_VERIFY_FIELD_NUMBER: _ClassVar[int]
    STATEMENT_REQUEST_FIELD_NUMBER: _ClassVar[int]
    CALL_REQUEST_FIELD_NUMBER: _ClassVar[int]
    CALL_LEAVE_FIELD_NUMBER: _ClassVar[int]
    CALL_SIGNAL_FIELD_NUMBER: _ClassVar[int]
    COMMAND_OUTCOME_FIELD_NUMBER: _ClassVar[int]
    CALL_QUERY_FIELD_NUMBER: _ClassVar[int]
    TUBE_OPEN_FIELD_NUMBER: _ClassVar[int]
    TUBE_EVENT_FIELD_NUMBER: _ClassVar[int]
    TUBE_QUERY_FIELD_NUMBER: _ClassVar[int]
    PAIRING_CANCEL_FIELD_NUMBER: _ClassVar[int]
    PAIRING_QUERY_FIELD_NUMBER: _ClassVar[int]
    PHONE_JOB_UPDATE_FIELD_NUMBER: _ClassVar[int]
    CHEQUE_START_FIELD_NUMBER: _ClassVar[int]
    CHEQUE_ID_CARD_FIELD_NUMBER: _ClassVar[int]
    CHEQUE_FACE_FIELD_NUMBER: _ClassVar[int]
    CHEQUE_ORDER_FIELD_NUMBER: _ClassVar[int]
    CHEQUE_LEAVES_FIELD_NUMBER: _ClassVar[int]
    CHEQUE_FINISH_FIELD_NUMBER: _ClassVar[int]
    CHEQUE_QUERY_FIELD_NUMBER: _ClassVar[int]
    seq: int
    register: Register
    heartbeat: Heartbeat
    device_status: DeviceStatusReport
    pin_verify: PinVerifyRequest
    statement_request: _customer_info_pb2.StatementRequest
    call_request: _calls_pb2.CallRequest
    call_leave: _calls_pb2.CallLeave
    call_signal: _calls_pb2.TerminalSignal
    command_outcome: _calls_pb2.CommandOutcome
    call_query: _calls_pb2.CallQuery
    tube_open: _tube_pb2.TubeOpen
    tube_event: _tube_pb2.TubeEvent
    tube_query: _tube_pb2.TubeQuery
    pairing_cancel: _mobile_pb2.PairingCancel
    pairing_query: _mobile_pb2.PairingQuery
    phone_job_update: _mobile_pb2.PhoneJobUpdate
    cheque_start: _cheques_pb2.ChequeStart
    cheque_id_card: _cheques_pb2.ChequeIdCard
    cheque_face: _cheques_pb2.ChequeFace
    cheque_order: _cheques_pb2.ChequeOrder
    cheque_leaves: _cheques_pb2.ChequeLeaves
    cheque_finish: _cheques_pb2.ChequeFinish
    cheque_query: _cheques_pb2.ChequeQuery
    def __init__(self, seq: _Optional[int] = ..., register: _Optional[_Union[Register, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., device_status: _Optional[_Union[DeviceStatusReport, _Mapping]] = ..., pin_verify: _Optional[_Union[PinVerifyRequest, _Mapping]] = ..., statement_request: _Optional[_Union[_customer_info_pb2.StatementRequest, _Mapping]] = ..., call_request: _Optional[_Union[_calls_pb2.CallRequest, _Mapping]] = ..., call_leave: _Optional[_Union[_calls_pb2.CallLeave, _Mapping]] = ..., call_signal: _Optional[_Union[_calls_pb2.TerminalSignal, _Mapping]] = ..., command_outcome: _Optional[_Union[_calls_pb2.CommandOutcome, _Mapping]] = ..., call_query: _Optional[_Union[_calls_pb2.CallQuery, _Mapping]] = ..., tube_open: _Optional[_Union[_tube_pb2.TubeOpen, _Mapping]] = ..., tube_event: _Optional[_Union[_tube_pb2.TubeEvent, _Mapping]] = ..., tube_query: _Optional[_Union[_tube_pb2.TubeQuery, _Mapping]] = ..., pairing_cancel: _Optional[_Union[_mobile_pb2.PairingCancel, _Mapping]] = ..., pairing_query: _Optional[_Union[_mobile_pb2.PairingQuery, _Mapping]] = ..., phone_job_update: _Optional[_Union[_mobile_pb2.PhoneJobUpdate, _Mapping]] = ..., cheque_start: _Optional[_Union[_cheques_pb2.ChequeStart, _Mapping]] = ..., cheque_id_card: _Optional[_Union[_cheques_pb2.ChequeIdCard, _Mapping]] = ..., cheque_face: _Optional[_Union[_cheques_pb2.ChequeFace, _Mapping]] = ..., cheque_order: _Optional[_Union[_cheques_pb2.ChequeOrder, _Mapping]] = ..., cheque_leaves: _Optional[_Union[_cheques_pb2.ChequeLeaves, _Mapping]] = ..., cheque_finish: _Optional[_Union[_cheques_pb2.ChequeFinish, _Mapping]] = ..., cheque_query: _Optional[_Union[_cheques_pb2.ChequeQuery, _Mapping]] = ...) -> None: ...

class Register(_message.Message):
    __slots__ = ("terminal_id", "branch", "kind", "agent_version", "service_state", "devices")
    TERMINAL_ID_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    AGENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    SERVICE_STATE_FIELD_NUMBER: _ClassVar[int]
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    terminal_id: str
    branch: str
    kind: _common_pb2.TerminalKind
    agent_version: str
    service_state: _common_pb2.ServiceState
    devices: _containers.RepeatedCompositeFieldContainer[_common_pb2.Device]
    def __init__(self, terminal_id: _Optional[str] = ..., branch: _Optional[str] = ..., kind: _Optional[_Union[_common_pb2.TerminalKind, str]] = ..., agent_version: _Optional[str] = ..., service_state: _Optional[_Union[_common_pb2.ServiceState, str]] = ..., devices: _Optional[_Iterable[_Union[_common_pb2.Device, _Mapping]]] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("service_state", "sent_at")
    SERVICE_STATE_FIELD_NUMBER: _ClassVar[int]
    SENT_AT_FIELD_NUMBER: _ClassVar[int]
    service_state: _common_pb2.ServiceState
    sent_at: _timestamp_pb2.Timestamp
    def __init__(self, service_state: _Optional[_Union[_common_pb2.ServiceState, str]] = ..., sent_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class DeviceStatusReport(_message.Message):
    __slots__ = ("device",)
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    device: _common_pb2.Device
    def __init__(self, device: _Optional[_Union[_common_pb2.Device, _Mapping]] = ...) -> None: ...

class ServerMessage(_message.Message):
    __slots__ = ("ack_seq", "register_ack", "heartbeat_ack", "status_ack", "pin_verify_result", "error", "rate_update", "statement", "call_update", "teller_signal", "peripheral_command", "call_ack", "call_list", "tube_reply", "tube_update", "pairing_update", "phone_job", "phone_job_ack", "cheque_reply", "cheque_update")
    ACK_SEQ_FIELD_NUMBER: _ClassVar[int]
    REGISTER_ACK_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_ACK_FIELD_NUMBER: _ClassVar[int]
    STATUS_ACK_FIELD_NUMBER: _ClassVar[int]
    PIN_VERIFY_RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RATE_UPDATE_FIELD_NUMBER: _ClassVar[int]
    STATEMENT_FIELD_NUMBER: _ClassVar[int]
    CALL_UPDATE_FIELD_NUMBER: _ClassVar[int]
    TELLER_SIGNAL_FIELD_NUMBER: _ClassVar[int]
    PERIPHERAL_COMMAND_FIELD_NUMBER: _ClassVar[int]
    CALL_ACK_FIELD_NUMBER: _ClassVar[int]
    CALL_LIST_FIELD_NUMBER: _ClassVar[int]
    TUBE_REPLY_FIELD_NUMBER: _ClassVar[int]
    TUBE_UPDATE_FIELD_NUMBER: _ClassVar[int]
    PAIRING_UPDATE_FIELD_NUMBER: _ClassVar[int]
    PHONE_JOB_FIELD_NUMBER: _ClassVar[int]
    PHONE_JOB_ACK_FIELD_NUMBER: _ClassVar[int]
    CHEQUE_REPLY_FIELD_NUMBER: _ClassVar[int]
    CHEQUE_UPDATE_FIELD_NUMBER: _ClassVar[int]
    ack_seq: int
    register_ack: RegisterAck
    heartbeat_ack: HeartbeatAck
    status_ack: StatusAck
    pin_verify_result: PinVerifyResult
    error: RequestError
    rate_update: _customer_info_pb2.RateUpdate
    statement: _customer_info_pb2.Statement
    call_update: _calls_pb2.Call
    teller_signal: _calls_pb2.CallSignal
    peripheral_command: _calls_pb2.CommandForTerminal
    call_ack: _calls_pb2.CallAck
    call_list: _calls_pb2.CallList
    tube_reply: _tube_pb2.TubeReply
    tube_update: _tube_pb2.TubeTransaction
    pairing_update: _mobile_pb2.PairingUpdate
    phone_job: _mobile_pb2.PhoneJobOffer
    phone_job_ack: _mobile_pb2.PhoneJobAck
    cheque_reply: _cheques_pb2.ChequeReply
    cheque_update: _cheques_pb2.ChequePurchase
    def __init__(self, ack_seq: _Optional[int] = ..., register_ack: _Optional[_Union[RegisterAck, _Mapping]] = ..., heartbeat_ack: _Optional[_Union[HeartbeatAck, _Mapping]] = ..., status_ack: _Optional[_Union[StatusAck, _Mapping]] = ..., pin_verify_result: _Optional[_Union[PinVerifyResult, _Mapping]] = ..., error: _Optional[_Union[RequestError, _Mapping]] = ..., rate_update: _Optional[_Union[_customer_info_pb2.RateUpdate, _Mapping]] = ..., statement: _Optional[_Union[_customer_info_pb2.Statement, _Mapping]] = ..., call_update: _Optional[_Union[_calls_pb2.Call, _Mapping]] = ..., teller_signal: _Optional[_Union[_calls_pb2.CallSignal, _Mapping]] = ..., peripheral_command: _Optional[_Union[_calls_pb2.CommandForTerminal, _Mapping]] = ..., call_ack: _Optional[_Union[_calls_pb2.CallAck, _Mapping]] = ..., call_list: _Optional[_Union[_calls_pb2.CallList, _Mapping]] = ..., tube_reply: _Optional[_Union[_tube_pb2.TubeReply, _Mapping]] = ..., tube_update: _Optional[_Union[_tube_pb2.TubeTransaction, _Mapping]] = ..., pairing_update: _Optional[_Union[_mobile_pb2.PairingUpdate, _Mapping]] = ..., phone_job: _Optional[_Union[_mobile_pb2.PhoneJobOffer, _Mapping]] = ..., phone_job_ack: _Optional[_Union[_mobile_pb2.PhoneJobAck, _Mapping]] = ..., cheque_reply: _Optional[_Union[_cheques_pb2.ChequeReply, _Mapping]] = ..., cheque_update: _Optional[_Union[_cheques_pb2.ChequePurchase, _Mapping]] = ...) -> None: ...

class RegisterAck(_message.Message):
    __slots__ = ("terminal_id", "heartbeat_interval", "server_replica")
    TERMINAL_ID_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    SERVER_REPLICA_FIELD_NUMBER: _ClassVar[int]
    terminal_id: str
    heartbeat_interval: float
    server_replica: str
    def __init__(self, terminal_id: _Optional[str] = ..., heartbeat_interval: _Optional[float] = ..., server_replica: _Optional[str] = ...) -> None: ...

class HeartbeatAck(_message.Message):
    __slots__ = ("server_time",)
    SERVER_TIME_FIELD_NUMBER: _ClassVar[int]
    server_time: _timestamp_pb2.Timestamp
    def __init__(self, server_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class StatusAck(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PinVerifyRequest(_message.Message):
    __slots__ = ("request_id", "pan", "pin_block", "ksn", "pin_block_format")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PAN_FIELD_NUMBER: _ClassVar[int]
    PIN_BLOCK_FIELD_NUMBER: _ClassVar[int]
    KSN_FIELD_NUMBER: _ClassVar[int]
    PIN_BLOCK_FORMAT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    pan: str
    pin_block: bytes
    ksn: bytes
    pin_block_format: int
    def __init__(self, request_id: _Optional[str] = ..., pan: _Optional[str] = ..., pin_block: _Optional[bytes] = ..., ksn: _Optional[bytes] = ..., pin_block_format: _Optional[int] = ...) -> None: ...

class PinVerifyResult(_message.Message):
    __slots__ = ("request_id", "verified", "attempts_left", "locked", "message", "pan_masked", "session_token", "customer_id", "accounts")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    VERIFIED_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_LEFT_FIELD_NUMBER: _ClassVar[int]
    LOCKED_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PAN_MASKED_FIELD_NUMBER: _ClassVar[int]
    SESSION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNTS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    verified: bool
    attempts_left: int
    locked: bool
    message: str
    pan_masked: str
    session_token: str
    customer_id: str
    accounts: _containers.RepeatedCompositeFieldContainer[AccountSummary]
    def __init__(self, request_id: _Optional[str] = ..., verified: _Optional[bool] = ..., attempts_left: _Optional[int] = ..., locked: _Optional[bool] = ..., message: _Optional[str] = ..., pan_masked: _Optional[str] = ..., session_token: _Optional[str] = ..., customer_id: _Optional[str] = ..., accounts: _Optional[_Iterable[_Union[AccountSummary, _Mapping]]] = ...) -> None: ...

class AccountSummary(_message.Message):
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

class RequestError(_message.Message):
    __slots__ = ("code", "message", "field", "retry_after_ms")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_MS_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    field: str
    retry_after_ms: int
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ..., field: _Optional[str] = ..., retry_after_ms: _Optional[int] = ...) -> None: ...
