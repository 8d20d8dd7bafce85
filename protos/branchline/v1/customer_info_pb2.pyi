import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RateEntry(_message.Message):
    __slots__ = ("currency", "bid", "ask")
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    BID_FIELD_NUMBER: _ClassVar[int]
    ASK_FIELD_NUMBER: _ClassVar[int]
    currency: str
    bid: str
    ask: str
    def __init__(self, currency: _Optional[str] = ..., bid: _Optional[str] = ..., ask: _Optional[str] = ...) -> None: ...

class RateTable(_message.Message):
    __slots__ = ("version", "as_of", "base_currency", "source", "rates")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    BASE_CURRENCY_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    RATES_FIELD_NUMBER: _ClassVar[int]
    version: int
    as_of: _timestamp_pb2.Timestamp
    base_currency: str
    source: str
    rates: _containers.RepeatedCompositeFieldContainer[RateEntry]
    def __init__(self, version: _Optional[int] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., base_currency: _Optional[str] = ..., source: _Optional[str] = ..., rates: _Optional[_Iterable[_Union[RateEntry, _Mapping]]] = ...) -> None: ...

class RateUpdate(_message.Message):
    __slots__ = ("table",)
    TABLE_FIELD_NUMBER: _ClassVar[int]
    table: RateTable
    def __init__(self, table: _Optional[_Union[RateTable, _Mapping]] = ...) -> None: ...

class StatementRequest(_message.Message):
    __slots__ = ("session_token", "account_id", "limit")
    SESSION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    session_token: str
    account_id: str
    limit: int
    def __init__(self, session_token: _Optional[str] = ..., account_id: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class StatementAccount(_message.Message):
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

class StatementLine(_message.Message):
    __slots__ = ("entry_id", "posted_at", "kind", "description", "amount", "balance_after")
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    POSTED_AT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    BALANCE_AFTER_FIELD_NUMBER: _ClassVar[int]
    entry_id: int
    posted_at: _timestamp_pb2.Timestamp
    kind: str
    description: str
    amount: str
    balance_after: str
    def __init__(self, entry_id: _Optional[int] = ..., posted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., kind: _Optional[str] = ..., description: _Optional[str] = ..., amount: _Optional[str] = ..., balance_after: _Optional[str] = ...) -> None: ...

class Statement(_message.Message):
    __slots__ = ("customer_id", "account", "opening_balance", "lines", "balances", "generated_at")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    OPENING_BALANCE_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    BALANCES_FIELD_NUMBER: _ClassVar[int]
    GENERATED_AT_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    account: StatementAccount
    opening_balance: str
    lines: _containers.RepeatedCompositeFieldContainer[StatementLine]
    balances: _containers.RepeatedCompositeFieldContainer[StatementAccount]
    generated_at: _timestamp_pb2.Timestamp
    def __init__(self, customer_id: _Optional[str] = ..., account: _Optional[_Union[StatementAccount, _Mapping]] = ..., opening_balance: _Optional[str] = ..., lines: _Optional[_Iterable[_Union[StatementLine, _Mapping]]] = ..., balances: _Optional[_Iterable[_Union[StatementAccount, _Mapping]]] = ..., generated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetRatesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RatesView(_message.Message):
    __slots__ = ("known", "stale", "table", "received_at")
    KNOWN_FIELD_NUMBER: _ClassVar[int]
    STALE_FIELD_NUMBER: _ClassVar[int]
    TABLE_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    known: bool
    stale: bool
    table: RateTable
    received_at: _timestamp_pb2.Timestamp
    def __init__(self, known: _Optional[bool] = ..., stale: _Optional[bool] = ..., table: _Optional[_Union[RateTable, _Mapping]] = ..., received_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class StatementQuery(_message.Message):
    __slots__ = ("session_id", "account_id", "limit")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    account_id: str
    limit: int
    def __init__(self, session_id: _Optional[str] = ..., account_id: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class PrintResult(_message.Message):
    __slots__ = ("completion", "code", "detail", "reference", "bytes")
    COMPLETION_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    completion: str
    code: str
    detail: str
    reference: str
    bytes: int
    def __init__(self, completion: _Optional[str] = ..., code: _Optional[str] = ..., detail: _Optional[str] = ..., reference: _Optional[str] = ..., bytes: _Optional[int] = ...) -> None: ...

class LookupReferenceRequest(_message.Message):
    __slots__ = ("reference",)
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    reference: str
    def __init__(self, reference: _Optional[str] = ...) -> None: ...

class LedgerLeg(_message.Message):
    __slots__ = ("account_id", "currency", "amount", "balance_after")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    BALANCE_AFTER_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    currency: str
    amount: str
    balance_after: str
    def __init__(self, account_id: _Optional[str] = ..., currency: _Optional[str] = ..., amount: _Optional[str] = ..., balance_after: _Optional[str] = ...) -> None: ...

class LedgerEntry(_message.Message):
    __slots__ = ("entry_id", "request_id", "kind", "description", "posted_at", "legs", "reverses_entry_id", "rate_version", "hold_id")
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    POSTED_AT_FIELD_NUMBER: _ClassVar[int]
    LEGS_FIELD_NUMBER: _ClassVar[int]
    REVERSES_ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    RATE_VERSION_FIELD_NUMBER: _ClassVar[int]
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    entry_id: int
    request_id: str
    kind: str
    description: str
    posted_at: _timestamp_pb2.Timestamp
    legs: _containers.RepeatedCompositeFieldContainer[LedgerLeg]
    reverses_entry_id: int
    rate_version: int
    hold_id: str
    def __init__(self, entry_id: _Optional[int] = ..., request_id: _Optional[str] = ..., kind: _Optional[str] = ..., description: _Optional[str] = ..., posted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., legs: _Optional[_Iterable[_Union[LedgerLeg, _Mapping]]] = ..., reverses_entry_id: _Optional[int] = ..., rate_version: _Optional[int] = ..., hold_id: _Optional[str] = ...) -> None: ...

class LedgerHold(_message.Message):
    __slots__ = ("hold_id", "request_id", "account_id", "currency", "amount", "status", "reason")
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    hold_id: str
    request_id: str
    account_id: str
    currency: str
    amount: str
    status: str
    reason: str
    def __init__(self, hold_id: _Optional[str] = ..., request_id: _Optional[str] = ..., account_id: _Optional[str] = ..., currency: _Optional[str] = ..., amount: _Optional[str] = ..., status: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class LookupReferenceResult(_message.Message):
    __slots__ = ("reference", "terminal_id", "txn_id", "entries", "holds")
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_ID_FIELD_NUMBER: _ClassVar[int]
    TXN_ID_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    HOLDS_FIELD_NUMBER: _ClassVar[int]
    reference: str
    terminal_id: str
    txn_id: str
    entries: _containers.RepeatedCompositeFieldContainer[LedgerEntry]
    holds: _containers.RepeatedCompositeFieldContainer[LedgerHold]
    def __init__(self, reference: _Optional[str] = ..., terminal_id: _Optional[str] = ..., txn_id: _Optional[str] = ..., entries: _Optional[_Iterable[_Union[LedgerEntry, _Mapping]]] = ..., holds: _Optional[_Iterable[_Union[LedgerHold, _Mapping]]] = ...) -> None: ...
