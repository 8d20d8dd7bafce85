import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from branchline.v1 import recordings_pb2 as _recordings_pb2
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

class LoginRequest(_message.Message):
    __slots__ = ("session", "customer_id", "password", "totp")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    TOTP_FIELD_NUMBER: _ClassVar[int]
    session: SessionRequest
    customer_id: str
    password: str
    totp: str
    def __init__(self, session: _Optional[_Union[SessionRequest, _Mapping]] = ..., customer_id: _Optional[str] = ..., password: _Optional[str] = ..., totp: _Optional[str] = ...) -> None: ...

class PhoneAccount(_message.Message):
    __slots__ = ("account_id", "kind", "currency", "available")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    kind: str
    currency: str
    available: str
    def __init__(self, account_id: _Optional[str] = ..., kind: _Optional[str] = ..., currency: _Optional[str] = ..., available: _Optional[str] = ...) -> None: ...

class LoginResult(_message.Message):
    __slots__ = ("customer_id", "accounts")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNTS_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    accounts: _containers.RepeatedCompositeFieldContainer[PhoneAccount]
    def __init__(self, customer_id: _Optional[str] = ..., accounts: _Optional[_Iterable[_Union[PhoneAccount, _Mapping]]] = ...) -> None: ...

class QuoteRequest(_message.Message):
    __slots__ = ("session", "account_id", "currency", "amount")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    session: SessionRequest
    account_id: str
    currency: str
    amount: str
    def __init__(self, session: _Optional[_Union[SessionRequest, _Mapping]] = ..., account_id: _Optional[str] = ..., currency: _Optional[str] = ..., amount: _Optional[str] = ...) -> None: ...

class QuoteResult(_message.Message):
    __slots__ = ("account_id", "currency", "amount", "rate", "rate_version", "equivalent", "account_currency")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    RATE_FIELD_NUMBER: _ClassVar[int]
    RATE_VERSION_FIELD_NUMBER: _ClassVar[int]
    EQUIVALENT_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_CURRENCY_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    currency: str
    amount: str
    rate: str
    rate_version: int
    equivalent: str
    account_currency: str
    def __init__(self, account_id: _Optional[str] = ..., currency: _Optional[str] = ..., amount: _Optional[str] = ..., rate: _Optional[str] = ..., rate_version: _Optional[int] = ..., equivalent: _Optional[str] = ..., account_currency: _Optional[str] = ...) -> None: ...

class SubmitJobRequest(_message.Message):
    __slots__ = ("session", "idempotency_key", "service", "auth", "account_id", "asset_kind", "currency", "amount", "rate_version", "period_from", "period_to", "cheque_leaves", "business_type")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    AUTH_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    ASSET_KIND_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    RATE_VERSION_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FROM_FIELD_NUMBER: _ClassVar[int]
    PERIOD_TO_FIELD_NUMBER: _ClassVar[int]
    CHEQUE_LEAVES_FIELD_NUMBER: _ClassVar[int]
    BUSINESS_TYPE_FIELD_NUMBER: _ClassVar[int]
    session: SessionRequest
    idempotency_key: str
    service: str
    auth: str
    account_id: str
    asset_kind: str
    currency: str
    amount: str
    rate_version: int
    period_from: str
    period_to: str
    cheque_leaves: int
    business_type: str
    def __init__(self, session: _Optional[_Union[SessionRequest, _Mapping]] = ..., idempotency_key: _Optional[str] = ..., service: _Optional[str] = ..., auth: _Optional[str] = ..., account_id: _Optional[str] = ..., asset_kind: _Optional[str] = ..., currency: _Optional[str] = ..., amount: _Optional[str] = ..., rate_version: _Optional[int] = ..., period_from: _Optional[str] = ..., period_to: _Optional[str] = ..., cheque_leaves: _Optional[int] = ..., business_type: _Optional[str] = ...) -> None: ...

class JobRequest(_message.Message):
    __slots__ = ("session", "job_id")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    session: SessionRequest
    job_id: str
    def __init__(self, session: _Optional[_Union[SessionRequest, _Mapping]] = ..., job_id: _Optional[str] = ...) -> None: ...

class FetchJobRecordingRequest(_message.Message):
    __slots__ = ("session", "job_id", "sha256", "offset")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    session: SessionRequest
    job_id: str
    sha256: str
    offset: int
    def __init__(self, session: _Optional[_Union[SessionRequest, _Mapping]] = ..., job_id: _Optional[str] = ..., sha256: _Optional[str] = ..., offset: _Optional[int] = ...) -> None: ...

class PhoneJob(_message.Message):
    __slots__ = ("job_id", "service", "auth", "state", "reason", "receipt_reference", "queue_position", "summary", "terminal_id", "statement", "needs_presence")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    AUTH_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    QUEUE_POSITION_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_ID_FIELD_NUMBER: _ClassVar[int]
    STATEMENT_FIELD_NUMBER: _ClassVar[int]
    NEEDS_PRESENCE_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    service: str
    auth: str
    state: str
    reason: str
    receipt_reference: str
    queue_position: int
    summary: str
    terminal_id: str
    statement: _containers.RepeatedCompositeFieldContainer[PhoneStatementLine]
    needs_presence: bool
    def __init__(self, job_id: _Optional[str] = ..., service: _Optional[str] = ..., auth: _Optional[str] = ..., state: _Optional[str] = ..., reason: _Optional[str] = ..., receipt_reference: _Optional[str] = ..., queue_position: _Optional[int] = ..., summary: _Optional[str] = ..., terminal_id: _Optional[str] = ..., statement: _Optional[_Iterable[_Union[PhoneStatementLine, _Mapping]]] = ..., needs_presence: _Optional[bool] = ...) -> None: ...

class PhoneStatementLine(_message.Message):
    __slots__ = ("date", "description", "amount", "balance")
    DATE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    date: str
    description: str
    amount: str
    balance: str
    def __init__(self, date: _Optional[str] = ..., description: _Optional[str] = ..., amount: _Optional[str] = ..., balance: _Optional[str] = ...) -> None: ...

class PhoneJobOffer(_message.Message):
    __slots__ = ("job_id", "service", "auth", "account_id", "asset_kind", "currency", "amount", "rate_version", "period_from", "period_to", "cheque_leaves", "business_type", "customer_id", "session_token", "accounts", "pairing_id", "matching_code", "needs_presence")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    AUTH_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    ASSET_KIND_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    RATE_VERSION_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FROM_FIELD_NUMBER: _ClassVar[int]
    PERIOD_TO_FIELD_NUMBER: _ClassVar[int]
    CHEQUE_LEAVES_FIELD_NUMBER: _ClassVar[int]
    BUSINESS_TYPE_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ACCOUNTS_FIELD_NUMBER: _ClassVar[int]
    PAIRING_ID_FIELD_NUMBER: _ClassVar[int]
    MATCHING_CODE_FIELD_NUMBER: _ClassVar[int]
    NEEDS_PRESENCE_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    service: str
    auth: str
    account_id: str
    asset_kind: str
    currency: str
    amount: str
    rate_version: int
    period_from: str
    period_to: str
    cheque_leaves: int
    business_type: str
    customer_id: str
    session_token: str
    accounts: _containers.RepeatedCompositeFieldContainer[PhoneAccount]
    pairing_id: str
    matching_code: str
    needs_presence: bool
    def __init__(self, job_id: _Optional[str] = ..., service: _Optional[str] = ..., auth: _Optional[str] = ..., account_id: _Optional[str] = ..., asset_kind: _Optional[str] = ..., currency: _Optional[str] = ..., amount: _Optional[str] = ..., rate_version: _Optional[int] = ..., period_from: _Optional[str] = ..., period_to: _Optional[str] = ..., cheque_leaves: _Optional[int] = ..., business_type: _Optional[str] = ..., customer_id: _Optional[str] = ..., session_token: _Optional[str] = ..., accounts: _Optional[_Iterable[_Union[PhoneAccount, _Mapping]]] = ..., pairing_id: _Optional[str] = ..., matching_code: _Optional[str] = ..., needs_presence: _Optional[bool] = ...) -> None: ...

class PhoneJobUpdate(_message.Message):
    __slots__ = ("job_id", "state", "reason", "receipt_reference", "queue_position", "customer_id", "statement")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    QUEUE_POSITION_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    STATEMENT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    state: str
    reason: str
    receipt_reference: str
    queue_position: int
    customer_id: str
    statement: _containers.RepeatedCompositeFieldContainer[PhoneStatementLine]
    def __init__(self, job_id: _Optional[str] = ..., state: _Optional[str] = ..., reason: _Optional[str] = ..., receipt_reference: _Optional[str] = ..., queue_position: _Optional[int] = ..., customer_id: _Optional[str] = ..., statement: _Optional[_Iterable[_Union[PhoneStatementLine, _Mapping]]] = ...) -> None: ...

class PhoneJobAck(_message.Message):
    __slots__ = ("job_id", "state")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    state: str
    def __init__(self, job_id: _Optional[str] = ..., state: _Optional[str] = ...) -> None: ...
