import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AssistantOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ASSISTANT_OUTCOME_UNSPECIFIED: _ClassVar[AssistantOutcome]
    ASSISTANT_OUTCOME_ANSWER: _ClassVar[AssistantOutcome]
    ASSISTANT_OUTCOME_HANDOVER: _ClassVar[AssistantOutcome]
    ASSISTANT_OUTCOME_NOTED: _ClassVar[AssistantOutcome]
ASSISTANT_OUTCOME_UNSPECIFIED: AssistantOutcome
ASSISTANT_OUTCOME_ANSWER: AssistantOutcome
ASSISTANT_OUTCOME_HANDOVER: AssistantOutcome
ASSISTANT_OUTCOME_NOTED: AssistantOutcome

class AssistantAskRequest(_message.Message):
    __slots__ = ("conversation_id", "lang", "text")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    LANG_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    lang: str
    text: str
    def __init__(self, conversation_id: _Optional[str] = ..., lang: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...

class AssistantReply(_message.Message):
    __slots__ = ("conversation_id", "outcome", "answer", "entry_id", "action", "confidence", "handover_reason", "topic")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    HANDOVER_REASON_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    outcome: AssistantOutcome
    answer: str
    entry_id: str
    action: str
    confidence: float
    handover_reason: str
    topic: str
    def __init__(self, conversation_id: _Optional[str] = ..., outcome: _Optional[_Union[AssistantOutcome, str]] = ..., answer: _Optional[str] = ..., entry_id: _Optional[str] = ..., action: _Optional[str] = ..., confidence: _Optional[float] = ..., handover_reason: _Optional[str] = ..., topic: _Optional[str] = ...) -> None: ...

class AssistantFeedbackRequest(_message.Message):
    __slots__ = ("conversation_id", "helpful")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    HELPFUL_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    helpful: bool
    def __init__(self, conversation_id: _Optional[str] = ..., helpful: _Optional[bool] = ...) -> None: ...

class AssistantHandOverRequest(_message.Message):
    __slots__ = ("conversation_id", "reason")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    reason: str
    def __init__(self, conversation_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class AssistantAttachCallRequest(_message.Message):
    __slots__ = ("conversation_id", "call_id")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    call_id: str
    def __init__(self, conversation_id: _Optional[str] = ..., call_id: _Optional[str] = ...) -> None: ...

class AssistantAttachCallReply(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AssistantTurn(_message.Message):
    __slots__ = ("at", "speaker", "text", "entry_id", "confidence")
    AT_FIELD_NUMBER: _ClassVar[int]
    SPEAKER_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    at: _timestamp_pb2.Timestamp
    speaker: str
    text: str
    entry_id: str
    confidence: float
    def __init__(self, at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., speaker: _Optional[str] = ..., text: _Optional[str] = ..., entry_id: _Optional[str] = ..., confidence: _Optional[float] = ...) -> None: ...

class AssistantTranscript(_message.Message):
    __slots__ = ("conversation_id", "terminal_id", "lang", "call_id", "handover_reason", "topic", "turns")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_ID_FIELD_NUMBER: _ClassVar[int]
    LANG_FIELD_NUMBER: _ClassVar[int]
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    HANDOVER_REASON_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    TURNS_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    terminal_id: str
    lang: str
    call_id: str
    handover_reason: str
    topic: str
    turns: _containers.RepeatedCompositeFieldContainer[AssistantTurn]
    def __init__(self, conversation_id: _Optional[str] = ..., terminal_id: _Optional[str] = ..., lang: _Optional[str] = ..., call_id: _Optional[str] = ..., handover_reason: _Optional[str] = ..., topic: _Optional[str] = ..., turns: _Optional[_Iterable[_Union[AssistantTurn, _Mapping]]] = ...) -> None: ...

class GetAssistantTranscriptRequest(_message.Message):
    __slots__ = ("conversation_id", "call_id")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    call_id: str
    def __init__(self, conversation_id: _Optional[str] = ..., call_id: _Optional[str] = ...) -> None: ...

class AssistantQuestion(_message.Message):
    __slots__ = ("question_id", "lang", "text", "terminal_id", "conversation_id", "asked_at", "status", "times_asked")
    QUESTION_ID_FIELD_NUMBER: _ClassVar[int]
    LANG_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    ASKED_AT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TIMES_ASKED_FIELD_NUMBER: _ClassVar[int]
    question_id: int
    lang: str
    text: str
    terminal_id: str
    conversation_id: str
    asked_at: _timestamp_pb2.Timestamp
    status: str
    times_asked: int
    def __init__(self, question_id: _Optional[int] = ..., lang: _Optional[str] = ..., text: _Optional[str] = ..., terminal_id: _Optional[str] = ..., conversation_id: _Optional[str] = ..., asked_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., status: _Optional[str] = ..., times_asked: _Optional[int] = ...) -> None: ...

class ListUnansweredQuestionsRequest(_message.Message):
    __slots__ = ("status",)
    STATUS_FIELD_NUMBER: _ClassVar[int]
    status: str
    def __init__(self, status: _Optional[str] = ...) -> None: ...

class ListUnansweredQuestionsReply(_message.Message):
    __slots__ = ("questions",)
    QUESTIONS_FIELD_NUMBER: _ClassVar[int]
    questions: _containers.RepeatedCompositeFieldContainer[AssistantQuestion]
    def __init__(self, questions: _Optional[_Iterable[_Union[AssistantQuestion, _Mapping]]] = ...) -> None: ...

class KbEntryText(_message.Message):
    __slots__ = ("questions_en", "questions_zh", "answer_en", "answer_zh", "action", "topic")
    QUESTIONS_EN_FIELD_NUMBER: _ClassVar[int]
    QUESTIONS_ZH_FIELD_NUMBER: _ClassVar[int]
    ANSWER_EN_FIELD_NUMBER: _ClassVar[int]
    ANSWER_ZH_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    questions_en: _containers.RepeatedScalarFieldContainer[str]
    questions_zh: _containers.RepeatedScalarFieldContainer[str]
    answer_en: str
    answer_zh: str
    action: str
    topic: str
    def __init__(self, questions_en: _Optional[_Iterable[str]] = ..., questions_zh: _Optional[_Iterable[str]] = ..., answer_en: _Optional[str] = ..., answer_zh: _Optional[str] = ..., action: _Optional[str] = ..., topic: _Optional[str] = ...) -> None: ...

class KbEntry(_message.Message):
    __slots__ = ("entry_id", "text", "status", "version", "updated_by", "updated_at")
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    UPDATED_BY_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    entry_id: str
    text: KbEntryText
    status: str
    version: int
    updated_by: str
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, entry_id: _Optional[str] = ..., text: _Optional[_Union[KbEntryText, _Mapping]] = ..., status: _Optional[str] = ..., version: _Optional[int] = ..., updated_by: _Optional[str] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ProposeAnswerRequest(_message.Message):
    __slots__ = ("question_id", "entry_id", "text")
    QUESTION_ID_FIELD_NUMBER: _ClassVar[int]
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    question_id: int
    entry_id: str
    text: KbEntryText
    def __init__(self, question_id: _Optional[int] = ..., entry_id: _Optional[str] = ..., text: _Optional[_Union[KbEntryText, _Mapping]] = ...) -> None: ...

class KbProposal(_message.Message):
    __slots__ = ("proposal_id", "question_id", "entry_id", "text", "status", "proposed_by", "proposed_at", "decided_by", "decision_note", "question_text")
    PROPOSAL_ID_FIELD_NUMBER: _ClassVar[int]
    QUESTION_ID_FIELD_NUMBER: _ClassVar[int]
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PROPOSED_BY_FIELD_NUMBER: _ClassVar[int]
    PROPOSED_AT_FIELD_NUMBER: _ClassVar[int]
    DECIDED_BY_FIELD_NUMBER: _ClassVar[int]
    DECISION_NOTE_FIELD_NUMBER: _ClassVar[int]
    QUESTION_TEXT_FIELD_NUMBER: _ClassVar[int]
    proposal_id: int
    question_id: int
    entry_id: str
    text: KbEntryText
    status: str
    proposed_by: str
    proposed_at: _timestamp_pb2.Timestamp
    decided_by: str
    decision_note: str
    question_text: str
    def __init__(self, proposal_id: _Optional[int] = ..., question_id: _Optional[int] = ..., entry_id: _Optional[str] = ..., text: _Optional[_Union[KbEntryText, _Mapping]] = ..., status: _Optional[str] = ..., proposed_by: _Optional[str] = ..., proposed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., decided_by: _Optional[str] = ..., decision_note: _Optional[str] = ..., question_text: _Optional[str] = ...) -> None: ...

class ListKbProposalsRequest(_message.Message):
    __slots__ = ("status",)
    STATUS_FIELD_NUMBER: _ClassVar[int]
    status: str
    def __init__(self, status: _Optional[str] = ...) -> None: ...

class ListKbProposalsReply(_message.Message):
    __slots__ = ("proposals",)
    PROPOSALS_FIELD_NUMBER: _ClassVar[int]
    proposals: _containers.RepeatedCompositeFieldContainer[KbProposal]
    def __init__(self, proposals: _Optional[_Iterable[_Union[KbProposal, _Mapping]]] = ...) -> None: ...

class DecideKbProposalRequest(_message.Message):
    __slots__ = ("proposal_id", "approve", "note")
    PROPOSAL_ID_FIELD_NUMBER: _ClassVar[int]
    APPROVE_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    proposal_id: int
    approve: bool
    note: str
    def __init__(self, proposal_id: _Optional[int] = ..., approve: _Optional[bool] = ..., note: _Optional[str] = ...) -> None: ...

class ListKbEntriesRequest(_message.Message):
    __slots__ = ("include_retired",)
    INCLUDE_RETIRED_FIELD_NUMBER: _ClassVar[int]
    include_retired: bool
    def __init__(self, include_retired: _Optional[bool] = ...) -> None: ...

class ListKbEntriesReply(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[KbEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[KbEntry, _Mapping]]] = ...) -> None: ...

class RetireKbEntryRequest(_message.Message):
    __slots__ = ("entry_id",)
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    entry_id: str
    def __init__(self, entry_id: _Optional[str] = ...) -> None: ...
