import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TubeKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TUBE_KIND_UNSPECIFIED: _ClassVar[TubeKind]
    TUBE_KIND_DEPOSIT: _ClassVar[TubeKind]
    TUBE_KIND_WITHDRAWAL: _ClassVar[TubeKind]

class AssetKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ASSET_KIND_UNSPECIFIED: _ClassVar[AssetKind]
    ASSET_KIND_CASH: _ClassVar[AssetKind]
    ASSET_KIND_METAL: _ClassVar[AssetKind]
    ASSET_KIND_BILL: _ClassVar[AssetKind]

class TubeState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TUBE_STATE_UNSPECIFIED: _ClassVar[TubeState]
    TUBE_STATE_OPEN: _ClassVar[TubeState]
    TUBE_STATE_IN_TRANSIT: _ClassVar[TubeState]
    TUBE_STATE_RECEIVED: _ClassVar[TubeState]
    TUBE_STATE_COUNTED: _ClassVar[TubeState]
    TUBE_STATE_DISPATCHED: _ClassVar[TubeState]
    TUBE_STATE_DELIVERED: _ClassVar[TubeState]
    TUBE_STATE_DISPUTED: _ClassVar[TubeState]
    TUBE_STATE_RETURNING: _ClassVar[TubeState]
    TUBE_STATE_POSTED: _ClassVar[TubeState]
    TUBE_STATE_RETURNED: _ClassVar[TubeState]
    TUBE_STATE_REVERSED: _ClassVar[TubeState]
    TUBE_STATE_CANCELED: _ClassVar[TubeState]
    TUBE_STATE_HANDED_TO_TELLER: _ClassVar[TubeState]

class TubeEventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TUBE_EVENT_UNSPECIFIED: _ClassVar[TubeEventKind]
    TUBE_EVENT_CARRIER_SENT: _ClassVar[TubeEventKind]
    TUBE_EVENT_CARRIER_ARRIVED: _ClassVar[TubeEventKind]
    TUBE_EVENT_CARRIER_TAKEN: _ClassVar[TubeEventKind]
    TUBE_EVENT_CONFIRM: _ClassVar[TubeEventKind]
    TUBE_EVENT_DISPUTE: _ClassVar[TubeEventKind]
    TUBE_EVENT_CANCEL: _ClassVar[TubeEventKind]
    TUBE_EVENT_REVERSE: _ClassVar[TubeEventKind]
    TUBE_EVENT_HANDOVER: _ClassVar[TubeEventKind]

class Decision(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DECISION_UNSPECIFIED: _ClassVar[Decision]
    DECISION_CONFIRM: _ClassVar[Decision]
    DECISION_DISPUTE_RETURN: _ClassVar[Decision]
    DECISION_DISPUTE_TELLER: _ClassVar[Decision]

class CustomerStep(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CUSTOMER_STEP_UNSPECIFIED: _ClassVar[CustomerStep]
    CUSTOMER_STEP_NONE: _ClassVar[CustomerStep]
    CUSTOMER_STEP_LOAD_CARRIER: _ClassVar[CustomerStep]
    CUSTOMER_STEP_DECIDE: _ClassVar[CustomerStep]
    CUSTOMER_STEP_TAKE_CARRIER: _ClassVar[CustomerStep]
    CUSTOMER_STEP_CONFIRM_RECEIPT: _ClassVar[CustomerStep]
    CUSTOMER_STEP_WAIT: _ClassVar[CustomerStep]
TUBE_KIND_UNSPECIFIED: TubeKind
TUBE_KIND_DEPOSIT: TubeKind
TUBE_KIND_WITHDRAWAL: TubeKind
ASSET_KIND_UNSPECIFIED: AssetKind
ASSET_KIND_CASH: AssetKind
ASSET_KIND_METAL: AssetKind
ASSET_KIND_BILL: AssetKind
TUBE_STATE_UNSPECIFIED: TubeState
TUBE_STATE_OPEN: TubeState
TUBE_STATE_IN_TRANSIT: TubeState
TUBE_STATE_RECEIVED: TubeState
TUBE_STATE_COUNTED: TubeState
TUBE_STATE_DISPATCHED: TubeState
TUBE_STATE_DELIVERED: TubeState
TUBE_STATE_DISPUTED: TubeState
TUBE_STATE_RETURNING: TubeState
TUBE_STATE_POSTED: TubeState
TUBE_STATE_RETURNED: TubeState
TUBE_STATE_REVERSED: TubeState
TUBE_STATE_CANCELED: TubeState
TUBE_STATE_HANDED_TO_TELLER: TubeState
TUBE_EVENT_UNSPECIFIED: TubeEventKind
TUBE_EVENT_CARRIER_SENT: TubeEventKind
TUBE_EVENT_CARRIER_ARRIVED: TubeEventKind
TUBE_EVENT_CARRIER_TAKEN: TubeEventKind
TUBE_EVENT_CONFIRM: TubeEventKind
TUBE_EVENT_DISPUTE: TubeEventKind
TUBE_EVENT_CANCEL: TubeEventKind
TUBE_EVENT_REVERSE: TubeEventKind
TUBE_EVENT_HANDOVER: TubeEventKind
DECISION_UNSPECIFIED: Decision
DECISION_CONFIRM: Decision
DECISION_DISPUTE_RETURN: Decision
DECISION_DISPUTE_TELLER: Decision
CUSTOMER_STEP_UNSPECIFIED: CustomerStep
CUSTOMER_STEP_NONE: CustomerStep
CUSTOMER_STEP_LOAD_CARRIER: CustomerStep
CUSTOMER_STEP_DECIDE: CustomerStep
CUSTOMER_STEP_TAKE_CARRIER: CustomerStep
CUSTOMER_STEP_CONFIRM_RECEIPT: CustomerStep
CUSTOMER_STEP_WAIT: CustomerStep

class BillInfo(_message.Message):
    __slots__ = ("bill_id", "instrument", "maturity")
    BILL_ID_FIELD_NUMBER: _ClassVar[int]
    INSTRUMENT_FIELD_NUMBER: _ClassVar[int]
    MATURITY_FIELD_NUMBER: _ClassVar[int]
    bill_id: str
    instrument: str
    maturity: str
    def __init__(self, bill_id: _Optional[str] = ..., instrument: _Optional[str] = ..., maturity: _Optional[str] = ...) -> None: ...

class TubeAsset(_message.Message):
    __slots__ = ("kind", "currency", "amount", "bill")
    KIND_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    BILL_FIELD_NUMBER: _ClassVar[int]
    kind: AssetKind
    currency: str
    amount: str
    bill: BillInfo
    def __init__(self, kind: _Optional[_Union[AssetKind, str]] = ..., currency: _Optional[str] = ..., amount: _Optional[str] = ..., bill: _Optional[_Union[BillInfo, _Mapping]] = ...) -> None: ...

class TubeQuote(_message.Message):
    __slots__ = ("rate_version", "rate", "account_currency", "account_amount")
    RATE_VERSION_FIELD_NUMBER: _ClassVar[int]
    RATE_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_CURRENCY_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    rate_version: int
    rate: str
    account_currency: str
    account_amount: str
    def __init__(self, rate_version: _Optional[int] = ..., rate: _Optional[str] = ..., account_currency: _Optional[str] = ..., account_amount: _Optional[str] = ...) -> None: ...

class TubeTransaction(_message.Message):
    __slots__ = ("txn_id", "terminal_id", "branch", "kind", "state", "customer_id", "account_id", "requested", "counted", "quote", "carrier_id", "hold_id", "entry_id", "balance_after", "available_after", "note", "reason", "incident_id", "created_at", "updated_at", "updated_by", "pan_masked")
    TXN_ID_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_ID_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_FIELD_NUMBER: _ClassVar[int]
    COUNTED_FIELD_NUMBER: _ClassVar[int]
    QUOTE_FIELD_NUMBER: _ClassVar[int]
    CARRIER_ID_FIELD_NUMBER: _ClassVar[int]
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    BALANCE_AFTER_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_AFTER_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    INCIDENT_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_BY_FIELD_NUMBER: _ClassVar[int]
    PAN_MASKED_FIELD_NUMBER: _ClassVar[int]
    txn_id: str
    terminal_id: str
    branch: str
    kind: TubeKind
    state: TubeState
    customer_id: str
    account_id: str
    requested: TubeAsset
    counted: TubeAsset
    quote: TubeQuote
    carrier_id: int
    hold_id: str
    entry_id: int
    balance_after: str
    available_after: str
    note: str
    reason: str
    incident_id: int
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    updated_by: str
    pan_masked: str
    def __init__(self, txn_id: _Optional[str] = ..., terminal_id: _Optional[str] = ..., branch: _Optional[str] = ..., kind: _Optional[_Union[TubeKind, str]] = ..., state: _Optional[_Union[TubeState, str]] = ..., customer_id: _Optional[str] = ..., account_id: _Optional[str] = ..., requested: _Optional[_Union[TubeAsset, _Mapping]] = ..., counted: _Optional[_Union[TubeAsset, _Mapping]] = ..., quote: _Optional[_Union[TubeQuote, _Mapping]] = ..., carrier_id: _Optional[int] = ..., hold_id: _Optional[str] = ..., entry_id: _Optional[int] = ..., balance_after: _Optional[str] = ..., available_after: _Optional[str] = ..., note: _Optional[str] = ..., reason: _Optional[str] = ..., incident_id: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_by: _Optional[str] = ..., pan_masked: _Optional[str] = ...) -> None: ...

class TubeOpen(_message.Message):
    __slots__ = ("request_id", "txn_id", "kind", "session_token", "account_id", "asset", "rate_version")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TXN_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SESSION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    ASSET_FIELD_NUMBER: _ClassVar[int]
    RATE_VERSION_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    txn_id: str
    kind: TubeKind
    session_token: str
    account_id: str
    asset: TubeAsset
    rate_version: int
    def __init__(self, request_id: _Optional[str] = ..., txn_id: _Optional[str] = ..., kind: _Optional[_Union[TubeKind, str]] = ..., session_token: _Optional[str] = ..., account_id: _Optional[str] = ..., asset: _Optional[_Union[TubeAsset, _Mapping]] = ..., rate_version: _Optional[int] = ...) -> None: ...

class TubeEvent(_message.Message):
    __slots__ = ("request_id", "txn_id", "kind", "carrier_id", "customer_confirmed", "reason", "detail")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TXN_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    CARRIER_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_CONFIRMED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    txn_id: str
    kind: TubeEventKind
    carrier_id: int
    customer_confirmed: bool
    reason: str
    detail: str
    def __init__(self, request_id: _Optional[str] = ..., txn_id: _Optional[str] = ..., kind: _Optional[_Union[TubeEventKind, str]] = ..., carrier_id: _Optional[int] = ..., customer_confirmed: _Optional[bool] = ..., reason: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class TubeQuery(_message.Message):
    __slots__ = ("txn_id",)
    TXN_ID_FIELD_NUMBER: _ClassVar[int]
    txn_id: str
    def __init__(self, txn_id: _Optional[str] = ...) -> None: ...

class TubeReply(_message.Message):
    __slots__ = ("request_id", "txn", "code", "message", "txns", "field", "retry_after_ms")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TXN_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TXNS_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_MS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    txn: TubeTransaction
    code: str
    message: str
    txns: _containers.RepeatedCompositeFieldContainer[TubeTransaction]
    field: str
    retry_after_ms: int
    def __init__(self, request_id: _Optional[str] = ..., txn: _Optional[_Union[TubeTransaction, _Mapping]] = ..., code: _Optional[str] = ..., message: _Optional[str] = ..., txns: _Optional[_Iterable[_Union[TubeTransaction, _Mapping]]] = ..., field: _Optional[str] = ..., retry_after_ms: _Optional[int] = ...) -> None: ...

class HistoryRequest(_message.Message):
    __slots__ = ("from_date", "to_date", "terminal_id", "customer_id", "reference", "limit")
    FROM_DATE_FIELD_NUMBER: _ClassVar[int]
    TO_DATE_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    from_date: str
    to_date: str
    terminal_id: str
    customer_id: str
    reference: str
    limit: int
    def __init__(self, from_date: _Optional[str] = ..., to_date: _Optional[str] = ..., terminal_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., reference: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class TubeRef(_message.Message):
    __slots__ = ("txn_id",)
    TXN_ID_FIELD_NUMBER: _ClassVar[int]
    txn_id: str
    def __init__(self, txn_id: _Optional[str] = ...) -> None: ...

class ListTubeRequest(_message.Message):
    __slots__ = ("states", "limit")
    STATES_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    states: _containers.RepeatedScalarFieldContainer[TubeState]
    limit: int
    def __init__(self, states: _Optional[_Iterable[_Union[TubeState, str]]] = ..., limit: _Optional[int] = ...) -> None: ...

class TubeList(_message.Message):
    __slots__ = ("txns",)
    TXNS_FIELD_NUMBER: _ClassVar[int]
    txns: _containers.RepeatedCompositeFieldContainer[TubeTransaction]
    def __init__(self, txns: _Optional[_Iterable[_Union[TubeTransaction, _Mapping]]] = ...) -> None: ...

class WatchTubeRequest(_message.Message):
    __slots__ = ("after_id",)
    AFTER_ID_FIELD_NUMBER: _ClassVar[int]
    after_id: int
    def __init__(self, after_id: _Optional[int] = ...) -> None: ...

class TubeEventRecord(_message.Message):
    __slots__ = ("event_id", "txn_id", "terminal_id", "branch", "state", "event", "actor", "detail", "at")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    TXN_ID_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_ID_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    event_id: int
    txn_id: str
    terminal_id: str
    branch: str
    state: TubeState
    event: str
    actor: str
    detail: str
    at: _timestamp_pb2.Timestamp
    def __init__(self, event_id: _Optional[int] = ..., txn_id: _Optional[str] = ..., terminal_id: _Optional[str] = ..., branch: _Optional[str] = ..., state: _Optional[_Union[TubeState, str]] = ..., event: _Optional[str] = ..., actor: _Optional[str] = ..., detail: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CarrierRequest(_message.Message):
    __slots__ = ("txn_id", "carrier_id")
    TXN_ID_FIELD_NUMBER: _ClassVar[int]
    CARRIER_ID_FIELD_NUMBER: _ClassVar[int]
    txn_id: str
    carrier_id: int
    def __init__(self, txn_id: _Optional[str] = ..., carrier_id: _Optional[int] = ...) -> None: ...

class CountRequest(_message.Message):
    __slots__ = ("txn_id", "counted", "note")
    TXN_ID_FIELD_NUMBER: _ClassVar[int]
    COUNTED_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    txn_id: str
    counted: TubeAsset
    note: str
    def __init__(self, txn_id: _Optional[str] = ..., counted: _Optional[_Union[TubeAsset, _Mapping]] = ..., note: _Optional[str] = ...) -> None: ...

class Incident(_message.Message):
    __slots__ = ("incident_id", "branch", "terminal_id", "txn_id", "kind", "detail", "opened_at", "resolved_at", "resolved_by", "resolution")
    INCIDENT_ID_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_ID_FIELD_NUMBER: _ClassVar[int]
    TXN_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    OPENED_AT_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_AT_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_BY_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    incident_id: int
    branch: str
    terminal_id: str
    txn_id: str
    kind: str
    detail: str
    opened_at: _timestamp_pb2.Timestamp
    resolved_at: _timestamp_pb2.Timestamp
    resolved_by: str
    resolution: str
    def __init__(self, incident_id: _Optional[int] = ..., branch: _Optional[str] = ..., terminal_id: _Optional[str] = ..., txn_id: _Optional[str] = ..., kind: _Optional[str] = ..., detail: _Optional[str] = ..., opened_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., resolved_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., resolved_by: _Optional[str] = ..., resolution: _Optional[str] = ...) -> None: ...

class ListIncidentsRequest(_message.Message):
    __slots__ = ("include_resolved",)
    INCLUDE_RESOLVED_FIELD_NUMBER: _ClassVar[int]
    include_resolved: bool
    def __init__(self, include_resolved: _Optional[bool] = ...) -> None: ...

class IncidentList(_message.Message):
    __slots__ = ("incidents",)
    INCIDENTS_FIELD_NUMBER: _ClassVar[int]
    incidents: _containers.RepeatedCompositeFieldContainer[Incident]
    def __init__(self, incidents: _Optional[_Iterable[_Union[Incident, _Mapping]]] = ...) -> None: ...

class ResolveIncidentRequest(_message.Message):
    __slots__ = ("incident_id", "resolution")
    INCIDENT_ID_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    incident_id: int
    resolution: str
    def __init__(self, incident_id: _Optional[int] = ..., resolution: _Optional[str] = ...) -> None: ...

class StartTubeRequest(_message.Message):
    __slots__ = ("session_id", "account_id", "asset")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    ASSET_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    account_id: str
    asset: TubeAsset
    def __init__(self, session_id: _Optional[str] = ..., account_id: _Optional[str] = ..., asset: _Optional[_Union[TubeAsset, _Mapping]] = ...) -> None: ...

class TubeAction(_message.Message):
    __slots__ = ("session_id", "txn_id")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TXN_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    txn_id: str
    def __init__(self, session_id: _Optional[str] = ..., txn_id: _Optional[str] = ...) -> None: ...

class DecideRequest(_message.Message):
    __slots__ = ("session_id", "txn_id", "decision")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TXN_ID_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    txn_id: str
    decision: Decision
    def __init__(self, session_id: _Optional[str] = ..., txn_id: _Optional[str] = ..., decision: _Optional[_Union[Decision, str]] = ...) -> None: ...

class ListOpenRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class TubeView(_message.Message):
    __slots__ = ("txn_id", "kind", "stage", "next", "message", "server", "finished", "outcome", "receipt_reference", "code")
    TXN_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    NEXT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SERVER_FIELD_NUMBER: _ClassVar[int]
    FINISHED_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    txn_id: str
    kind: TubeKind
    stage: str
    next: CustomerStep
    message: str
    server: TubeTransaction
    finished: bool
    outcome: str
    receipt_reference: str
    code: str
    def __init__(self, txn_id: _Optional[str] = ..., kind: _Optional[_Union[TubeKind, str]] = ..., stage: _Optional[str] = ..., next: _Optional[_Union[CustomerStep, str]] = ..., message: _Optional[str] = ..., server: _Optional[_Union[TubeTransaction, _Mapping]] = ..., finished: _Optional[bool] = ..., outcome: _Optional[str] = ..., receipt_reference: _Optional[str] = ..., code: _Optional[str] = ...) -> None: ...

class TubeViewList(_message.Message):
    __slots__ = ("views",)
    VIEWS_FIELD_NUMBER: _ClassVar[int]
    views: _containers.RepeatedCompositeFieldContainer[TubeView]
    def __init__(self, views: _Optional[_Iterable[_Union[TubeView, _Mapping]]] = ...) -> None: ...
