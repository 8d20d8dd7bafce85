import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TaskState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_STATE_UNSPECIFIED: _ClassVar[TaskState]
    TASK_STATE_QUEUED: _ClassVar[TaskState]
    TASK_STATE_AT_LOBBY: _ClassVar[TaskState]
    TASK_STATE_OFFERED: _ClassVar[TaskState]
    TASK_STATE_WAITING: _ClassVar[TaskState]
    TASK_STATE_ACCEPTED: _ClassVar[TaskState]
    TASK_STATE_DONE: _ClassVar[TaskState]
    TASK_STATE_CANCELLED: _ClassVar[TaskState]

class StaffRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STAFF_ROLE_UNSPECIFIED: _ClassVar[StaffRole]
    STAFF_ROLE_TELLER: _ClassVar[StaffRole]
    STAFF_ROLE_LOBBY_MANAGER: _ClassVar[StaffRole]

class Presence(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRESENCE_UNSPECIFIED: _ClassVar[Presence]
    PRESENCE_OFF_DUTY: _ClassVar[Presence]
    PRESENCE_IDLE: _ClassVar[Presence]
    PRESENCE_BUSY: _ClassVar[Presence]
    PRESENCE_AWAY: _ClassVar[Presence]

class OfferAnswer(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OFFER_ANSWER_UNSPECIFIED: _ClassVar[OfferAnswer]
    OFFER_ANSWER_ACCEPT: _ClassVar[OfferAnswer]
    OFFER_ANSWER_WAIT: _ClassVar[OfferAnswer]
    OFFER_ANSWER_REJECT: _ClassVar[OfferAnswer]

class ResultOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RESULT_OUTCOME_UNSPECIFIED: _ClassVar[ResultOutcome]
    RESULT_OUTCOME_SUCCESS: _ClassVar[ResultOutcome]
    RESULT_OUTCOME_FAILURE: _ClassVar[ResultOutcome]
TASK_STATE_UNSPECIFIED: TaskState
TASK_STATE_QUEUED: TaskState
TASK_STATE_AT_LOBBY: TaskState
TASK_STATE_OFFERED: TaskState
TASK_STATE_WAITING: TaskState
TASK_STATE_ACCEPTED: TaskState
TASK_STATE_DONE: TaskState
TASK_STATE_CANCELLED: TaskState
STAFF_ROLE_UNSPECIFIED: StaffRole
STAFF_ROLE_TELLER: StaffRole
STAFF_ROLE_LOBBY_MANAGER: StaffRole
PRESENCE_UNSPECIFIED: Presence
PRESENCE_OFF_DUTY: Presence
PRESENCE_IDLE: Presence
PRESENCE_BUSY: Presence
PRESENCE_AWAY: Presence
OFFER_ANSWER_UNSPECIFIED: OfferAnswer
OFFER_ANSWER_ACCEPT: OfferAnswer
OFFER_ANSWER_WAIT: OfferAnswer
OFFER_ANSWER_REJECT: OfferAnswer
RESULT_OUTCOME_UNSPECIFIED: ResultOutcome
RESULT_OUTCOME_SUCCESS: ResultOutcome
RESULT_OUTCOME_FAILURE: ResultOutcome

class Branch(_message.Message):
    __slots__ = ("branch_id", "name", "routing_strategy", "created_at")
    BRANCH_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROUTING_STRATEGY_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    branch_id: str
    name: str
    routing_strategy: str
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, branch_id: _Optional[str] = ..., name: _Optional[str] = ..., routing_strategy: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class StaffMember(_message.Message):
    __slots__ = ("role", "id", "name", "branch", "skills", "on_duty", "presence", "held_tasks", "handled", "idle_since")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    SKILLS_FIELD_NUMBER: _ClassVar[int]
    ON_DUTY_FIELD_NUMBER: _ClassVar[int]
    PRESENCE_FIELD_NUMBER: _ClassVar[int]
    HELD_TASKS_FIELD_NUMBER: _ClassVar[int]
    HANDLED_FIELD_NUMBER: _ClassVar[int]
    IDLE_SINCE_FIELD_NUMBER: _ClassVar[int]
    role: StaffRole
    id: str
    name: str
    branch: str
    skills: _containers.RepeatedScalarFieldContainer[str]
    on_duty: bool
    presence: Presence
    held_tasks: int
    handled: int
    idle_since: _timestamp_pb2.Timestamp
    def __init__(self, role: _Optional[_Union[StaffRole, str]] = ..., id: _Optional[str] = ..., name: _Optional[str] = ..., branch: _Optional[str] = ..., skills: _Optional[_Iterable[str]] = ..., on_duty: _Optional[bool] = ..., presence: _Optional[_Union[Presence, str]] = ..., held_tasks: _Optional[int] = ..., handled: _Optional[int] = ..., idle_since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Material(_message.Message):
    __slots__ = ("name", "content_type", "sha256", "size", "uploaded_at", "deleted_at", "image_type")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    UPLOADED_AT_FIELD_NUMBER: _ClassVar[int]
    DELETED_AT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_TYPE_FIELD_NUMBER: _ClassVar[int]
    name: str
    content_type: str
    sha256: str
    size: int
    uploaded_at: _timestamp_pb2.Timestamp
    deleted_at: _timestamp_pb2.Timestamp
    image_type: str
    def __init__(self, name: _Optional[str] = ..., content_type: _Optional[str] = ..., sha256: _Optional[str] = ..., size: _Optional[int] = ..., uploaded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., deleted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., image_type: _Optional[str] = ...) -> None: ...

class Offer(_message.Message):
    __slots__ = ("offer_id", "teller_id", "via", "offered_by", "offered_at", "expires_at", "answer", "answered_at", "reason")
    OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    TELLER_ID_FIELD_NUMBER: _ClassVar[int]
    VIA_FIELD_NUMBER: _ClassVar[int]
    OFFERED_BY_FIELD_NUMBER: _ClassVar[int]
    OFFERED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    ANSWERED_AT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    offer_id: int
    teller_id: str
    via: str
    offered_by: str
    offered_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    answer: str
    answered_at: _timestamp_pb2.Timestamp
    reason: str
    def __init__(self, offer_id: _Optional[int] = ..., teller_id: _Optional[str] = ..., via: _Optional[str] = ..., offered_by: _Optional[str] = ..., offered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., answer: _Optional[str] = ..., answered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...

class TaskResult(_message.Message):
    __slots__ = ("outcome", "reason")
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    outcome: ResultOutcome
    reason: str
    def __init__(self, outcome: _Optional[_Union[ResultOutcome, str]] = ..., reason: _Optional[str] = ...) -> None: ...

class Task(_message.Message):
    __slots__ = ("task_id", "request_id", "origin_terminal", "origin_branch", "target_branch", "business_type", "title", "fields", "note", "customer_ref", "state", "teller_id", "offer_id", "offer_expires_at", "lobby_manager_id", "wait_estimate_seconds", "result", "created_at", "updated_at", "materials", "offers", "history")
    class FieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_TERMINAL_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_BRANCH_FIELD_NUMBER: _ClassVar[int]
    TARGET_BRANCH_FIELD_NUMBER: _ClassVar[int]
    BUSINESS_TYPE_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_REF_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    TELLER_ID_FIELD_NUMBER: _ClassVar[int]
    OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    OFFER_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    LOBBY_MANAGER_ID_FIELD_NUMBER: _ClassVar[int]
    WAIT_ESTIMATE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    MATERIALS_FIELD_NUMBER: _ClassVar[int]
    OFFERS_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    request_id: str
    origin_terminal: str
    origin_branch: str
    target_branch: str
    business_type: str
    title: str
    fields: _containers.ScalarMap[str, str]
    note: str
    customer_ref: str
    state: TaskState
    teller_id: str
    offer_id: int
    offer_expires_at: _timestamp_pb2.Timestamp
    lobby_manager_id: str
    wait_estimate_seconds: int
    result: TaskResult
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    materials: _containers.RepeatedCompositeFieldContainer[Material]
    offers: _containers.RepeatedCompositeFieldContainer[Offer]
    history: _containers.RepeatedCompositeFieldContainer[DispatchEvent]
    def __init__(self, task_id: _Optional[str] = ..., request_id: _Optional[str] = ..., origin_terminal: _Optional[str] = ..., origin_branch: _Optional[str] = ..., target_branch: _Optional[str] = ..., business_type: _Optional[str] = ..., title: _Optional[str] = ..., fields: _Optional[_Mapping[str, str]] = ..., note: _Optional[str] = ..., customer_ref: _Optional[str] = ..., state: _Optional[_Union[TaskState, str]] = ..., teller_id: _Optional[str] = ..., offer_id: _Optional[int] = ..., offer_expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., lobby_manager_id: _Optional[str] = ..., wait_estimate_seconds: _Optional[int] = ..., result: _Optional[_Union[TaskResult, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., materials: _Optional[_Iterable[_Union[Material, _Mapping]]] = ..., offers: _Optional[_Iterable[_Union[Offer, _Mapping]]] = ..., history: _Optional[_Iterable[_Union[DispatchEvent, _Mapping]]] = ...) -> None: ...

class DispatchEvent(_message.Message):
    __slots__ = ("event_id", "kind", "task_id", "teller_id", "state", "detail", "at", "branch", "task")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    TELLER_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    event_id: int
    kind: str
    task_id: str
    teller_id: str
    state: TaskState
    detail: str
    at: _timestamp_pb2.Timestamp
    branch: str
    task: Task
    def __init__(self, event_id: _Optional[int] = ..., kind: _Optional[str] = ..., task_id: _Optional[str] = ..., teller_id: _Optional[str] = ..., state: _Optional[_Union[TaskState, str]] = ..., detail: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., branch: _Optional[str] = ..., task: _Optional[_Union[Task, _Mapping]] = ...) -> None: ...

class WhoAmIRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SetDutyRequest(_message.Message):
    __slots__ = ("on_duty", "teller_id")
    ON_DUTY_FIELD_NUMBER: _ClassVar[int]
    TELLER_ID_FIELD_NUMBER: _ClassVar[int]
    on_duty: bool
    teller_id: str
    def __init__(self, on_duty: _Optional[bool] = ..., teller_id: _Optional[str] = ...) -> None: ...

class SetPresenceRequest(_message.Message):
    __slots__ = ("away",)
    AWAY_FIELD_NUMBER: _ClassVar[int]
    away: bool
    def __init__(self, away: _Optional[bool] = ...) -> None: ...

class GetRosterRequest(_message.Message):
    __slots__ = ("branch",)
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    branch: str
    def __init__(self, branch: _Optional[str] = ...) -> None: ...

class Roster(_message.Message):
    __slots__ = ("branch", "tellers", "lobby_managers")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    TELLERS_FIELD_NUMBER: _ClassVar[int]
    LOBBY_MANAGERS_FIELD_NUMBER: _ClassVar[int]
    branch: str
    tellers: _containers.RepeatedCompositeFieldContainer[StaffMember]
    lobby_managers: _containers.RepeatedCompositeFieldContainer[StaffMember]
    def __init__(self, branch: _Optional[str] = ..., tellers: _Optional[_Iterable[_Union[StaffMember, _Mapping]]] = ..., lobby_managers: _Optional[_Iterable[_Union[StaffMember, _Mapping]]] = ...) -> None: ...

class WatchDispatchRequest(_message.Message):
    __slots__ = ("after_event_id",)
    AFTER_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    after_event_id: int
    def __init__(self, after_event_id: _Optional[int] = ...) -> None: ...

class WatchTasksRequest(_message.Message):
    __slots__ = ("after_event_id", "task_id")
    AFTER_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    after_event_id: int
    task_id: str
    def __init__(self, after_event_id: _Optional[int] = ..., task_id: _Optional[str] = ...) -> None: ...

class ListTasksRequest(_message.Message):
    __slots__ = ("states", "branch")
    STATES_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    states: _containers.RepeatedScalarFieldContainer[TaskState]
    branch: str
    def __init__(self, states: _Optional[_Iterable[_Union[TaskState, str]]] = ..., branch: _Optional[str] = ...) -> None: ...

class ListTasksResponse(_message.Message):
    __slots__ = ("tasks",)
    TASKS_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[Task]
    def __init__(self, tasks: _Optional[_Iterable[_Union[Task, _Mapping]]] = ...) -> None: ...

class GetTaskRequest(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class AnswerOfferRequest(_message.Message):
    __slots__ = ("task_id", "offer_id", "answer", "estimate_seconds", "reason")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    ESTIMATE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    offer_id: int
    answer: OfferAnswer
    estimate_seconds: int
    reason: str
    def __init__(self, task_id: _Optional[str] = ..., offer_id: _Optional[int] = ..., answer: _Optional[_Union[OfferAnswer, str]] = ..., estimate_seconds: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class ReassignRequest(_message.Message):
    __slots__ = ("task_id", "to_teller_id", "reason")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    TO_TELLER_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    to_teller_id: str
    reason: str
    def __init__(self, task_id: _Optional[str] = ..., to_teller_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class DesignateRequest(_message.Message):
    __slots__ = ("task_id", "teller_id", "reason")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    TELLER_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    teller_id: str
    reason: str
    def __init__(self, task_id: _Optional[str] = ..., teller_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class GetMaterialRequest(_message.Message):
    __slots__ = ("task_id", "sha256")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    sha256: str
    def __init__(self, task_id: _Optional[str] = ..., sha256: _Optional[str] = ...) -> None: ...

class MaterialData(_message.Message):
    __slots__ = ("material", "data")
    MATERIAL_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    material: Material
    data: bytes
    def __init__(self, material: _Optional[_Union[Material, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class CompleteTaskRequest(_message.Message):
    __slots__ = ("task_id", "outcome", "reason")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    outcome: ResultOutcome
    reason: str
    def __init__(self, task_id: _Optional[str] = ..., outcome: _Optional[_Union[ResultOutcome, str]] = ..., reason: _Optional[str] = ...) -> None: ...

class SendTaskRequest(_message.Message):
    __slots__ = ("request_id", "target_branch", "business_type", "title", "fields", "note", "customer_ref")
    class FieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_BRANCH_FIELD_NUMBER: _ClassVar[int]
    BUSINESS_TYPE_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_REF_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    target_branch: str
    business_type: str
    title: str
    fields: _containers.ScalarMap[str, str]
    note: str
    customer_ref: str
    def __init__(self, request_id: _Optional[str] = ..., target_branch: _Optional[str] = ..., business_type: _Optional[str] = ..., title: _Optional[str] = ..., fields: _Optional[_Mapping[str, str]] = ..., note: _Optional[str] = ..., customer_ref: _Optional[str] = ...) -> None: ...

class UploadMaterialRequest(_message.Message):
    __slots__ = ("task_id", "name", "content_type", "data", "sha256")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    name: str
    content_type: str
    data: bytes
    sha256: str
    def __init__(self, task_id: _Optional[str] = ..., name: _Optional[str] = ..., content_type: _Optional[str] = ..., data: _Optional[bytes] = ..., sha256: _Optional[str] = ...) -> None: ...

class CancelTaskRequest(_message.Message):
    __slots__ = ("task_id", "reason")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    reason: str
    def __init__(self, task_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class AddBranchRequest(_message.Message):
    __slots__ = ("branch_id", "name", "routing_strategy")
    BRANCH_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROUTING_STRATEGY_FIELD_NUMBER: _ClassVar[int]
    branch_id: str
    name: str
    routing_strategy: str
    def __init__(self, branch_id: _Optional[str] = ..., name: _Optional[str] = ..., routing_strategy: _Optional[str] = ...) -> None: ...

class ListBranchesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListBranchesResponse(_message.Message):
    __slots__ = ("branches",)
    BRANCHES_FIELD_NUMBER: _ClassVar[int]
    branches: _containers.RepeatedCompositeFieldContainer[Branch]
    def __init__(self, branches: _Optional[_Iterable[_Union[Branch, _Mapping]]] = ...) -> None: ...

class AddTellerRequest(_message.Message):
    __slots__ = ("teller_id", "name", "branch", "skills")
    TELLER_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    SKILLS_FIELD_NUMBER: _ClassVar[int]
    teller_id: str
    name: str
    branch: str
    skills: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, teller_id: _Optional[str] = ..., name: _Optional[str] = ..., branch: _Optional[str] = ..., skills: _Optional[_Iterable[str]] = ...) -> None: ...

class AddLobbyManagerRequest(_message.Message):
    __slots__ = ("manager_id", "name", "branch")
    MANAGER_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    manager_id: str
    name: str
    branch: str
    def __init__(self, manager_id: _Optional[str] = ..., name: _Optional[str] = ..., branch: _Optional[str] = ...) -> None: ...
