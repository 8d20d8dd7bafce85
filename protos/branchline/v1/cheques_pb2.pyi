import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ChequeState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHEQUE_STATE_UNSPECIFIED: _ClassVar[ChequeState]
    CHEQUE_STATE_STARTED: _ClassVar[ChequeState]
    CHEQUE_STATE_ID_CHECKED: _ClassVar[ChequeState]
    CHEQUE_STATE_IDENTIFIED: _ClassVar[ChequeState]
    CHEQUE_STATE_ORDERED: _ClassVar[ChequeState]
    CHEQUE_STATE_PRINTING: _ClassVar[ChequeState]
    CHEQUE_STATE_COMPLETED: _ClassVar[ChequeState]
    CHEQUE_STATE_CANCELED: _ClassVar[ChequeState]
    CHEQUE_STATE_FAILED: _ClassVar[ChequeState]
    CHEQUE_STATE_LOCKED: _ClassVar[ChequeState]

class ChequeMethod(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHEQUE_METHOD_UNSPECIFIED: _ClassVar[ChequeMethod]
    CHEQUE_METHOD_CARD_PIN: _ClassVar[ChequeMethod]
    CHEQUE_METHOD_PURCHASE_CODE: _ClassVar[ChequeMethod]

class LeafOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LEAF_OUTCOME_UNSPECIFIED: _ClassVar[LeafOutcome]
    LEAF_OUTCOME_PRINTED: _ClassVar[LeafOutcome]
    LEAF_OUTCOME_VOIDED: _ClassVar[LeafOutcome]
    LEAF_OUTCOME_RETURNED: _ClassVar[LeafOutcome]
    LEAF_OUTCOME_TAKEN: _ClassVar[LeafOutcome]

class FinishKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FINISH_KIND_UNSPECIFIED: _ClassVar[FinishKind]
    FINISH_KIND_TAKEN: _ClassVar[FinishKind]
    FINISH_KIND_CANCEL: _ClassVar[FinishKind]
    FINISH_KIND_FAULT: _ClassVar[FinishKind]

class LeafState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LEAF_STATE_UNSPECIFIED: _ClassVar[LeafState]
    LEAF_STATE_ALLOCATED: _ClassVar[LeafState]
    LEAF_STATE_PRINTED: _ClassVar[LeafState]
    LEAF_STATE_ISSUED: _ClassVar[LeafState]
    LEAF_STATE_VOIDED: _ClassVar[LeafState]
    LEAF_STATE_RETURNED: _ClassVar[LeafState]
CHEQUE_STATE_UNSPECIFIED: ChequeState
CHEQUE_STATE_STARTED: ChequeState
CHEQUE_STATE_ID_CHECKED: ChequeState
CHEQUE_STATE_IDENTIFIED: ChequeState
CHEQUE_STATE_ORDERED: ChequeState
CHEQUE_STATE_PRINTING: ChequeState
CHEQUE_STATE_COMPLETED: ChequeState
CHEQUE_STATE_CANCELED: ChequeState
CHEQUE_STATE_FAILED: ChequeState
CHEQUE_STATE_LOCKED: ChequeState
CHEQUE_METHOD_UNSPECIFIED: ChequeMethod
CHEQUE_METHOD_CARD_PIN: ChequeMethod
CHEQUE_METHOD_PURCHASE_CODE: ChequeMethod
LEAF_OUTCOME_UNSPECIFIED: LeafOutcome
LEAF_OUTCOME_PRINTED: LeafOutcome
LEAF_OUTCOME_VOIDED: LeafOutcome
LEAF_OUTCOME_RETURNED: LeafOutcome
LEAF_OUTCOME_TAKEN: LeafOutcome
FINISH_KIND_UNSPECIFIED: FinishKind
FINISH_KIND_TAKEN: FinishKind
FINISH_KIND_CANCEL: FinishKind
FINISH_KIND_FAULT: FinishKind
LEAF_STATE_UNSPECIFIED: LeafState
LEAF_STATE_ALLOCATED: LeafState
LEAF_STATE_PRINTED: LeafState
LEAF_STATE_ISSUED: LeafState
LEAF_STATE_VOIDED: LeafState
LEAF_STATE_RETURNED: LeafState

class CardPinMethod(_message.Message):
    __slots__ = ("session_token", "account_id")
    SESSION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    session_token: str
    account_id: str
    def __init__(self, session_token: _Optional[str] = ..., account_id: _Optional[str] = ...) -> None: ...

class PurchaseCodeMethod(_message.Message):
    __slots__ = ("account_number", "purchase_code")
    ACCOUNT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    PURCHASE_CODE_FIELD_NUMBER: _ClassVar[int]
    account_number: str
    purchase_code: str
    def __init__(self, account_number: _Optional[str] = ..., purchase_code: _Optional[str] = ...) -> None: ...

class ChequeStart(_message.Message):
    __slots__ = ("request_id", "purchase_id", "card_pin", "purchase_code")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PURCHASE_ID_FIELD_NUMBER: _ClassVar[int]
    CARD_PIN_FIELD_NUMBER: _ClassVar[int]
    PURCHASE_CODE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    purchase_id: str
    card_pin: CardPinMethod
    purchase_code: PurchaseCodeMethod
    def __init__(self, request_id: _Optional[str] = ..., purchase_id: _Optional[str] = ..., card_pin: _Optional[_Union[CardPinMethod, _Mapping]] = ..., purchase_code: _Optional[_Union[PurchaseCodeMethod, _Mapping]] = ...) -> None: ...

class IdCardRead(_message.Message):
    __slots__ = ("name", "sex_code", "ethnicity_code", "birth_date", "id_number", "issuing_authority", "valid_from", "valid_to", "sam_status", "photo_format", "photo")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SEX_CODE_FIELD_NUMBER: _ClassVar[int]
    ETHNICITY_CODE_FIELD_NUMBER: _ClassVar[int]
    BIRTH_DATE_FIELD_NUMBER: _ClassVar[int]
    ID_NUMBER_FIELD_NUMBER: _ClassVar[int]
    ISSUING_AUTHORITY_FIELD_NUMBER: _ClassVar[int]
    VALID_FROM_FIELD_NUMBER: _ClassVar[int]
    VALID_TO_FIELD_NUMBER: _ClassVar[int]
    SAM_STATUS_FIELD_NUMBER: _ClassVar[int]
    PHOTO_FORMAT_FIELD_NUMBER: _ClassVar[int]
    PHOTO_FIELD_NUMBER: _ClassVar[int]
    name: str
    sex_code: str
    ethnicity_code: str
    birth_date: str
    id_number: str
    issuing_authority: str
    valid_from: str
    valid_to: str
    sam_status: str
    photo_format: str
    photo: bytes
    def __init__(self, name: _Optional[str] = ..., sex_code: _Optional[str] = ..., ethnicity_code: _Optional[str] = ..., birth_date: _Optional[str] = ..., id_number: _Optional[str] = ..., issuing_authority: _Optional[str] = ..., valid_from: _Optional[str] = ..., valid_to: _Optional[str] = ..., sam_status: _Optional[str] = ..., photo_format: _Optional[str] = ..., photo: _Optional[bytes] = ...) -> None: ...

class ChequeIdCard(_message.Message):
    __slots__ = ("request_id", "purchase_id", "id_card")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PURCHASE_ID_FIELD_NUMBER: _ClassVar[int]
    ID_CARD_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    purchase_id: str
    id_card: IdCardRead
    def __init__(self, request_id: _Optional[str] = ..., purchase_id: _Optional[str] = ..., id_card: _Optional[_Union[IdCardRead, _Mapping]] = ...) -> None: ...

class FaceCaptureReport(_message.Message):
    __slots__ = ("jpeg", "width", "height", "liveness", "liveness_score", "face_count", "sharpness", "yaw_deg", "pitch_deg", "roll_deg", "driver")
    JPEG_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    LIVENESS_FIELD_NUMBER: _ClassVar[int]
    LIVENESS_SCORE_FIELD_NUMBER: _ClassVar[int]
    FACE_COUNT_FIELD_NUMBER: _ClassVar[int]
    SHARPNESS_FIELD_NUMBER: _ClassVar[int]
    YAW_DEG_FIELD_NUMBER: _ClassVar[int]
    PITCH_DEG_FIELD_NUMBER: _ClassVar[int]
    ROLL_DEG_FIELD_NUMBER: _ClassVar[int]
    DRIVER_FIELD_NUMBER: _ClassVar[int]
    jpeg: bytes
    width: int
    height: int
    liveness: str
    liveness_score: float
    face_count: int
    sharpness: float
    yaw_deg: float
    pitch_deg: float
    roll_deg: float
    driver: str
    def __init__(self, jpeg: _Optional[bytes] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., liveness: _Optional[str] = ..., liveness_score: _Optional[float] = ..., face_count: _Optional[int] = ..., sharpness: _Optional[float] = ..., yaw_deg: _Optional[float] = ..., pitch_deg: _Optional[float] = ..., roll_deg: _Optional[float] = ..., driver: _Optional[str] = ...) -> None: ...

class ChequeFace(_message.Message):
    __slots__ = ("request_id", "purchase_id", "capture")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PURCHASE_ID_FIELD_NUMBER: _ClassVar[int]
    CAPTURE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    purchase_id: str
    capture: FaceCaptureReport
    def __init__(self, request_id: _Optional[str] = ..., purchase_id: _Optional[str] = ..., capture: _Optional[_Union[FaceCaptureReport, _Mapping]] = ...) -> None: ...

class OrderLine(_message.Message):
    __slots__ = ("book_type", "books")
    BOOK_TYPE_FIELD_NUMBER: _ClassVar[int]
    BOOKS_FIELD_NUMBER: _ClassVar[int]
    book_type: str
    books: int
    def __init__(self, book_type: _Optional[str] = ..., books: _Optional[int] = ...) -> None: ...

class ChequeOrder(_message.Message):
    __slots__ = ("request_id", "purchase_id", "lines")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PURCHASE_ID_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    purchase_id: str
    lines: _containers.RepeatedCompositeFieldContainer[OrderLine]
    def __init__(self, request_id: _Optional[str] = ..., purchase_id: _Optional[str] = ..., lines: _Optional[_Iterable[_Union[OrderLine, _Mapping]]] = ...) -> None: ...

class LeafReport(_message.Message):
    __slots__ = ("number", "outcome", "void_reason", "ocr_serial", "job_id", "detail")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    VOID_REASON_FIELD_NUMBER: _ClassVar[int]
    OCR_SERIAL_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    number: str
    outcome: LeafOutcome
    void_reason: str
    ocr_serial: str
    job_id: int
    detail: str
    def __init__(self, number: _Optional[str] = ..., outcome: _Optional[_Union[LeafOutcome, str]] = ..., void_reason: _Optional[str] = ..., ocr_serial: _Optional[str] = ..., job_id: _Optional[int] = ..., detail: _Optional[str] = ...) -> None: ...

class ChequeLeaves(_message.Message):
    __slots__ = ("request_id", "purchase_id", "leaves")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PURCHASE_ID_FIELD_NUMBER: _ClassVar[int]
    LEAVES_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    purchase_id: str
    leaves: _containers.RepeatedCompositeFieldContainer[LeafReport]
    def __init__(self, request_id: _Optional[str] = ..., purchase_id: _Optional[str] = ..., leaves: _Optional[_Iterable[_Union[LeafReport, _Mapping]]] = ...) -> None: ...

class ChequeFinish(_message.Message):
    __slots__ = ("request_id", "purchase_id", "kind", "reason", "detail")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PURCHASE_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    purchase_id: str
    kind: FinishKind
    reason: str
    detail: str
    def __init__(self, request_id: _Optional[str] = ..., purchase_id: _Optional[str] = ..., kind: _Optional[_Union[FinishKind, str]] = ..., reason: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class ChequeQuery(_message.Message):
    __slots__ = ("purchase_id",)
    PURCHASE_ID_FIELD_NUMBER: _ClassVar[int]
    purchase_id: str
    def __init__(self, purchase_id: _Optional[str] = ...) -> None: ...

class BookOffer(_message.Message):
    __slots__ = ("book_type", "name", "leaves_per_book", "printing_cost", "handling_fee", "fee_per_book", "books_left_in_period", "books_in_stock", "refused_rule")
    BOOK_TYPE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    LEAVES_PER_BOOK_FIELD_NUMBER: _ClassVar[int]
    PRINTING_COST_FIELD_NUMBER: _ClassVar[int]
    HANDLING_FEE_FIELD_NUMBER: _ClassVar[int]
    FEE_PER_BOOK_FIELD_NUMBER: _ClassVar[int]
    BOOKS_LEFT_IN_PERIOD_FIELD_NUMBER: _ClassVar[int]
    BOOKS_IN_STOCK_FIELD_NUMBER: _ClassVar[int]
    REFUSED_RULE_FIELD_NUMBER: _ClassVar[int]
    book_type: str
    name: str
    leaves_per_book: int
    printing_cost: str
    handling_fee: str
    fee_per_book: str
    books_left_in_period: int
    books_in_stock: int
    refused_rule: str
    def __init__(self, book_type: _Optional[str] = ..., name: _Optional[str] = ..., leaves_per_book: _Optional[int] = ..., printing_cost: _Optional[str] = ..., handling_fee: _Optional[str] = ..., fee_per_book: _Optional[str] = ..., books_left_in_period: _Optional[int] = ..., books_in_stock: _Optional[int] = ..., refused_rule: _Optional[str] = ...) -> None: ...

class ChequeLeaf(_message.Message):
    __slots__ = ("number", "serial", "state", "void_reason")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    VOID_REASON_FIELD_NUMBER: _ClassVar[int]
    number: str
    serial: int
    state: LeafState
    void_reason: str
    def __init__(self, number: _Optional[str] = ..., serial: _Optional[int] = ..., state: _Optional[_Union[LeafState, str]] = ..., void_reason: _Optional[str] = ...) -> None: ...

class ChequeBook(_message.Message):
    __slots__ = ("book_type", "prefix", "first_serial", "last_serial", "leaves", "fee", "issued_complete")
    BOOK_TYPE_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    FIRST_SERIAL_FIELD_NUMBER: _ClassVar[int]
    LAST_SERIAL_FIELD_NUMBER: _ClassVar[int]
    LEAVES_FIELD_NUMBER: _ClassVar[int]
    FEE_FIELD_NUMBER: _ClassVar[int]
    ISSUED_COMPLETE_FIELD_NUMBER: _ClassVar[int]
    book_type: str
    prefix: str
    first_serial: int
    last_serial: int
    leaves: _containers.RepeatedCompositeFieldContainer[ChequeLeaf]
    fee: str
    issued_complete: bool
    def __init__(self, book_type: _Optional[str] = ..., prefix: _Optional[str] = ..., first_serial: _Optional[int] = ..., last_serial: _Optional[int] = ..., leaves: _Optional[_Iterable[_Union[ChequeLeaf, _Mapping]]] = ..., fee: _Optional[str] = ..., issued_complete: _Optional[bool] = ...) -> None: ...

class PrintHeader(_message.Message):
    __slots__ = ("company_name", "account_number", "bank_name", "bank_code")
    COMPANY_NAME_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    BANK_NAME_FIELD_NUMBER: _ClassVar[int]
    BANK_CODE_FIELD_NUMBER: _ClassVar[int]
    company_name: str
    account_number: str
    bank_name: str
    bank_code: str
    def __init__(self, company_name: _Optional[str] = ..., account_number: _Optional[str] = ..., bank_name: _Optional[str] = ..., bank_code: _Optional[str] = ...) -> None: ...

class ChequePurchase(_message.Message):
    __slots__ = ("purchase_id", "terminal_id", "branch", "state", "method", "account_id", "account_type", "currency", "header", "purchaser_id", "purchaser_name", "id_number_masked", "face_attempts_left", "face_outcome", "face_reason", "offers", "lines", "books", "fee_total", "fee_entry_id", "refund_entry_id", "fee_refunded", "balance_after", "available_after", "reason", "incident_id", "receipt_reference", "created_at", "updated_at", "finished")
    PURCHASE_ID_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_ID_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_TYPE_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    HEADER_FIELD_NUMBER: _ClassVar[int]
    PURCHASER_ID_FIELD_NUMBER: _ClassVar[int]
    PURCHASER_NAME_FIELD_NUMBER: _ClassVar[int]
    ID_NUMBER_MASKED_FIELD_NUMBER: _ClassVar[int]
    FACE_ATTEMPTS_LEFT_FIELD_NUMBER: _ClassVar[int]
    FACE_OUTCOME_FIELD_NUMBER: _ClassVar[int]
    FACE_REASON_FIELD_NUMBER: _ClassVar[int]
    OFFERS_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    BOOKS_FIELD_NUMBER: _ClassVar[int]
    FEE_TOTAL_FIELD_NUMBER: _ClassVar[int]
    FEE_ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    REFUND_ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    FEE_REFUNDED_FIELD_NUMBER: _ClassVar[int]
    BALANCE_AFTER_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_AFTER_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    INCIDENT_ID_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_FIELD_NUMBER: _ClassVar[int]
    purchase_id: str
    terminal_id: str
    branch: str
    state: ChequeState
    method: ChequeMethod
    account_id: str
    account_type: str
    currency: str
    header: PrintHeader
    purchaser_id: str
    purchaser_name: str
    id_number_masked: str
    face_attempts_left: int
    face_outcome: str
    face_reason: str
    offers: _containers.RepeatedCompositeFieldContainer[BookOffer]
    lines: _containers.RepeatedCompositeFieldContainer[OrderLine]
    books: _containers.RepeatedCompositeFieldContainer[ChequeBook]
    fee_total: str
    fee_entry_id: int
    refund_entry_id: int
    fee_refunded: str
    balance_after: str
    available_after: str
    reason: str
    incident_id: int
    receipt_reference: str
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    finished: bool
    def __init__(self, purchase_id: _Optional[str] = ..., terminal_id: _Optional[str] = ..., branch: _Optional[str] = ..., state: _Optional[_Union[ChequeState, str]] = ..., method: _Optional[_Union[ChequeMethod, str]] = ..., account_id: _Optional[str] = ..., account_type: _Optional[str] = ..., currency: _Optional[str] = ..., header: _Optional[_Union[PrintHeader, _Mapping]] = ..., purchaser_id: _Optional[str] = ..., purchaser_name: _Optional[str] = ..., id_number_masked: _Optional[str] = ..., face_attempts_left: _Optional[int] = ..., face_outcome: _Optional[str] = ..., face_reason: _Optional[str] = ..., offers: _Optional[_Iterable[_Union[BookOffer, _Mapping]]] = ..., lines: _Optional[_Iterable[_Union[OrderLine, _Mapping]]] = ..., books: _Optional[_Iterable[_Union[ChequeBook, _Mapping]]] = ..., fee_total: _Optional[str] = ..., fee_entry_id: _Optional[int] = ..., refund_entry_id: _Optional[int] = ..., fee_refunded: _Optional[str] = ..., balance_after: _Optional[str] = ..., available_after: _Optional[str] = ..., reason: _Optional[str] = ..., incident_id: _Optional[int] = ..., receipt_reference: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished: _Optional[bool] = ...) -> None: ...

class ChequeReply(_message.Message):
    __slots__ = ("request_id", "purchase", "kind", "code", "message", "field", "purchases")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PURCHASE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    PURCHASES_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    purchase: ChequePurchase
    kind: str
    code: str
    message: str
    field: str
    purchases: _containers.RepeatedCompositeFieldContainer[ChequePurchase]
    def __init__(self, request_id: _Optional[str] = ..., purchase: _Optional[_Union[ChequePurchase, _Mapping]] = ..., kind: _Optional[str] = ..., code: _Optional[str] = ..., message: _Optional[str] = ..., field: _Optional[str] = ..., purchases: _Optional[_Iterable[_Union[ChequePurchase, _Mapping]]] = ...) -> None: ...

class LoadStockRequest(_message.Message):
    __slots__ = ("terminal_id", "book_type", "first_serial", "last_serial")
    TERMINAL_ID_FIELD_NUMBER: _ClassVar[int]
    BOOK_TYPE_FIELD_NUMBER: _ClassVar[int]
    FIRST_SERIAL_FIELD_NUMBER: _ClassVar[int]
    LAST_SERIAL_FIELD_NUMBER: _ClassVar[int]
    terminal_id: str
    book_type: str
    first_serial: int
    last_serial: int
    def __init__(self, terminal_id: _Optional[str] = ..., book_type: _Optional[str] = ..., first_serial: _Optional[int] = ..., last_serial: _Optional[int] = ...) -> None: ...

class StockRangeRef(_message.Message):
    __slots__ = ("range_id",)
    RANGE_ID_FIELD_NUMBER: _ClassVar[int]
    range_id: int
    def __init__(self, range_id: _Optional[int] = ...) -> None: ...

class StockRange(_message.Message):
    __slots__ = ("range_id", "terminal_id", "book_type", "prefix", "first_serial", "last_serial", "books_free", "loaded_by", "loaded_at", "unloaded")
    RANGE_ID_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_ID_FIELD_NUMBER: _ClassVar[int]
    BOOK_TYPE_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    FIRST_SERIAL_FIELD_NUMBER: _ClassVar[int]
    LAST_SERIAL_FIELD_NUMBER: _ClassVar[int]
    BOOKS_FREE_FIELD_NUMBER: _ClassVar[int]
    LOADED_BY_FIELD_NUMBER: _ClassVar[int]
    LOADED_AT_FIELD_NUMBER: _ClassVar[int]
    UNLOADED_FIELD_NUMBER: _ClassVar[int]
    range_id: int
    terminal_id: str
    book_type: str
    prefix: str
    first_serial: int
    last_serial: int
    books_free: int
    loaded_by: str
    loaded_at: _timestamp_pb2.Timestamp
    unloaded: bool
    def __init__(self, range_id: _Optional[int] = ..., terminal_id: _Optional[str] = ..., book_type: _Optional[str] = ..., prefix: _Optional[str] = ..., first_serial: _Optional[int] = ..., last_serial: _Optional[int] = ..., books_free: _Optional[int] = ..., loaded_by: _Optional[str] = ..., loaded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., unloaded: _Optional[bool] = ...) -> None: ...

class ListStockRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StockList(_message.Message):
    __slots__ = ("ranges", "book_types", "terminal_ids")
    RANGES_FIELD_NUMBER: _ClassVar[int]
    BOOK_TYPES_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_IDS_FIELD_NUMBER: _ClassVar[int]
    ranges: _containers.RepeatedCompositeFieldContainer[StockRange]
    book_types: _containers.RepeatedCompositeFieldContainer[BookOffer]
    terminal_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, ranges: _Optional[_Iterable[_Union[StockRange, _Mapping]]] = ..., book_types: _Optional[_Iterable[_Union[BookOffer, _Mapping]]] = ..., terminal_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ListPurchasersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Purchaser(_message.Message):
    __slots__ = ("purchaser_id", "account_id", "company_name", "name", "id_number_masked", "enrolled", "face_sha256", "enrolled_at", "enrolled_by", "locked", "failed_faces")
    PURCHASER_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    COMPANY_NAME_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ID_NUMBER_MASKED_FIELD_NUMBER: _ClassVar[int]
    ENROLLED_FIELD_NUMBER: _ClassVar[int]
    FACE_SHA256_FIELD_NUMBER: _ClassVar[int]
    ENROLLED_AT_FIELD_NUMBER: _ClassVar[int]
    ENROLLED_BY_FIELD_NUMBER: _ClassVar[int]
    LOCKED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FACES_FIELD_NUMBER: _ClassVar[int]
    purchaser_id: str
    account_id: str
    company_name: str
    name: str
    id_number_masked: str
    enrolled: bool
    face_sha256: str
    enrolled_at: _timestamp_pb2.Timestamp
    enrolled_by: str
    locked: bool
    failed_faces: int
    def __init__(self, purchaser_id: _Optional[str] = ..., account_id: _Optional[str] = ..., company_name: _Optional[str] = ..., name: _Optional[str] = ..., id_number_masked: _Optional[str] = ..., enrolled: _Optional[bool] = ..., face_sha256: _Optional[str] = ..., enrolled_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., enrolled_by: _Optional[str] = ..., locked: _Optional[bool] = ..., failed_faces: _Optional[int] = ...) -> None: ...

class PurchaserList(_message.Message):
    __slots__ = ("purchasers",)
    PURCHASERS_FIELD_NUMBER: _ClassVar[int]
    purchasers: _containers.RepeatedCompositeFieldContainer[Purchaser]
    def __init__(self, purchasers: _Optional[_Iterable[_Union[Purchaser, _Mapping]]] = ...) -> None: ...

class EnrolFaceRequest(_message.Message):
    __slots__ = ("purchaser_id", "image")
    PURCHASER_ID_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    purchaser_id: str
    image: bytes
    def __init__(self, purchaser_id: _Optional[str] = ..., image: _Optional[bytes] = ...) -> None: ...

class PurchaserRef(_message.Message):
    __slots__ = ("purchaser_id",)
    PURCHASER_ID_FIELD_NUMBER: _ClassVar[int]
    purchaser_id: str
    def __init__(self, purchaser_id: _Optional[str] = ...) -> None: ...

class IssueCodeRequest(_message.Message):
    __slots__ = ("account_id",)
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    def __init__(self, account_id: _Optional[str] = ...) -> None: ...

class PurchaseCode(_message.Message):
    __slots__ = ("account_id", "code", "expires_at")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    code: str
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, account_id: _Optional[str] = ..., code: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListAlertsRequest(_message.Message):
    __slots__ = ("include_resolved",)
    INCLUDE_RESOLVED_FIELD_NUMBER: _ClassVar[int]
    include_resolved: bool
    def __init__(self, include_resolved: _Optional[bool] = ...) -> None: ...

class Alert(_message.Message):
    __slots__ = ("incident_id", "terminal_id", "purchase_id", "kind", "detail", "opened_at", "resolved_at", "resolved_by", "resolution")
    INCIDENT_ID_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_ID_FIELD_NUMBER: _ClassVar[int]
    PURCHASE_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    OPENED_AT_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_AT_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_BY_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    incident_id: int
    terminal_id: str
    purchase_id: str
    kind: str
    detail: str
    opened_at: _timestamp_pb2.Timestamp
    resolved_at: _timestamp_pb2.Timestamp
    resolved_by: str
    resolution: str
    def __init__(self, incident_id: _Optional[int] = ..., terminal_id: _Optional[str] = ..., purchase_id: _Optional[str] = ..., kind: _Optional[str] = ..., detail: _Optional[str] = ..., opened_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., resolved_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., resolved_by: _Optional[str] = ..., resolution: _Optional[str] = ...) -> None: ...

class AlertList(_message.Message):
    __slots__ = ("alerts",)
    ALERTS_FIELD_NUMBER: _ClassVar[int]
    alerts: _containers.RepeatedCompositeFieldContainer[Alert]
    def __init__(self, alerts: _Optional[_Iterable[_Union[Alert, _Mapping]]] = ...) -> None: ...

class ResolveAlertRequest(_message.Message):
    __slots__ = ("incident_id", "resolution")
    INCIDENT_ID_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    incident_id: int
    resolution: str
    def __init__(self, incident_id: _Optional[int] = ..., resolution: _Optional[str] = ...) -> None: ...

class WatchDisplayRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DisplayPurchase(_message.Message):
    __slots__ = ("purchase_id", "terminal_id", "state", "buyer_name", "id_number_masked", "photo_format", "company_name", "account_number", "contact_name", "contact_phone", "lines", "books", "fee_total", "fee_refunded", "updated_at")
    PURCHASE_ID_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    BUYER_NAME_FIELD_NUMBER: _ClassVar[int]
    ID_NUMBER_MASKED_FIELD_NUMBER: _ClassVar[int]
    PHOTO_FORMAT_FIELD_NUMBER: _ClassVar[int]
    COMPANY_NAME_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    CONTACT_NAME_FIELD_NUMBER: _ClassVar[int]
    CONTACT_PHONE_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    BOOKS_FIELD_NUMBER: _ClassVar[int]
    FEE_TOTAL_FIELD_NUMBER: _ClassVar[int]
    FEE_REFUNDED_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    purchase_id: str
    terminal_id: str
    state: ChequeState
    buyer_name: str
    id_number_masked: str
    photo_format: str
    company_name: str
    account_number: str
    contact_name: str
    contact_phone: str
    lines: _containers.RepeatedCompositeFieldContainer[OrderLine]
    books: _containers.RepeatedCompositeFieldContainer[ChequeBook]
    fee_total: str
    fee_refunded: str
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, purchase_id: _Optional[str] = ..., terminal_id: _Optional[str] = ..., state: _Optional[_Union[ChequeState, str]] = ..., buyer_name: _Optional[str] = ..., id_number_masked: _Optional[str] = ..., photo_format: _Optional[str] = ..., company_name: _Optional[str] = ..., account_number: _Optional[str] = ..., contact_name: _Optional[str] = ..., contact_phone: _Optional[str] = ..., lines: _Optional[_Iterable[_Union[OrderLine, _Mapping]]] = ..., books: _Optional[_Iterable[_Union[ChequeBook, _Mapping]]] = ..., fee_total: _Optional[str] = ..., fee_refunded: _Optional[str] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class DisplayPhotoRequest(_message.Message):
    __slots__ = ("purchase_id",)
    PURCHASE_ID_FIELD_NUMBER: _ClassVar[int]
    purchase_id: str
    def __init__(self, purchase_id: _Optional[str] = ...) -> None: ...

class DisplayPhoto(_message.Message):
    __slots__ = ("purchase_id", "photo_format", "photo")
    PURCHASE_ID_FIELD_NUMBER: _ClassVar[int]
    PHOTO_FORMAT_FIELD_NUMBER: _ClassVar[int]
    PHOTO_FIELD_NUMBER: _ClassVar[int]
    purchase_id: str
    photo_format: str
    photo: bytes
    def __init__(self, purchase_id: _Optional[str] = ..., photo_format: _Optional[str] = ..., photo: _Optional[bytes] = ...) -> None: ...

class BranchDisplay(_message.Message):
    __slots__ = ("branch", "purchases", "open_alerts")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    PURCHASES_FIELD_NUMBER: _ClassVar[int]
    OPEN_ALERTS_FIELD_NUMBER: _ClassVar[int]
    branch: str
    purchases: _containers.RepeatedCompositeFieldContainer[DisplayPurchase]
    open_alerts: int
    def __init__(self, branch: _Optional[str] = ..., purchases: _Optional[_Iterable[_Union[DisplayPurchase, _Mapping]]] = ..., open_alerts: _Optional[int] = ...) -> None: ...
