"""The electronic teller's conversations as plain functions: ask, feedback, hand-over,
the call a hand-over opened, and the transcript a teller reads. Raises the errors of
``common/errors.py``.

The matcher index is built from the active entries and the synonym table, and rebuilt
when they change (a cheap fingerprint query per question, so an approval on another
replica or an import by the CLI is seen by the next customer).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, insert, select, update

from branchline.common.errors import (
    InvalidArgument,
    NotFound,
    PermissionDenied,
    check_text,
)
from branchline.common.ids import random_hex
from branchline.common.logs import log_event
from branchline.common.redaction import redact_text
from branchline.server.assistant import rules
from branchline.server.assistant.knowledge import LANGS, EntryText, answer_in, build_matcher
from branchline.server.assistant.matcher import Matcher, normalize
from branchline.server.assistant.schema import (
    assistant_conversations,
    assistant_entries,
    assistant_questions,
    assistant_synonyms,
    assistant_turns,
)
from branchline.server.storage import write_transaction

log = logging.getLogger("branchline.server.assistant")

MAX_QUESTION = 500
MAX_TURNS = 200

ANSWER = "answer"
HANDOVER = "handover"
NOTED = "noted"


@dataclass(frozen=True)
class Reply:
    conversation_id: str
    outcome: str
    answer: str = ""
    entry_id: str = ""
    action: str = ""
    confidence: float = 0.0
    reason: str = ""
    topic: str = ""


def entry_from_row(row: Any) -> EntryText:
    return EntryText(
        questions={
            "en": tuple(json.loads(row.questions_en)),
            "zh-CN": tuple(json.loads(row.questions_zh)),
        },
        answers={"en": row.answer_en, "zh-CN": row.answer_zh},
        action=row.action,
        topic=row.topic,
    )


class AssistantService:
    def __init__(
        self,
        engine: Engine,
        threshold: float = rules.ANSWER_THRESHOLD,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.engine = engine
        self.threshold = threshold
        self.clock = clock
        self._lock = threading.Lock()
        self._fingerprint: tuple[Any, ...] | None = None
        self._matcher: Matcher | None = None
        self._entries: dict[str, EntryText] = {}

    # -- the knowledge base as the matcher sees it ---------------------------------------

    def _fingerprint_now(self) -> tuple[Any, ...]:
        with self.engine.connect() as conn:
            entries = conn.execute(
                select(
                    func.count(),
                    func.max(assistant_entries.c.updated_at),
                    func.sum(assistant_entries.c.version),
                )
            ).one()
            synonyms = conn.execute(
                select(func.count(), func.sum(func.length(assistant_synonyms.c.phrases)))
            ).one()
        return (*entries, *synonyms)

    def index(self) -> tuple[Matcher, dict[str, EntryText]]:
        """The matcher over the active entries (rebuilt when the base changed)."""
        fingerprint = self._fingerprint_now()
        with self._lock:
            if self._matcher is None or fingerprint != self._fingerprint:
                with self.engine.connect() as conn:
                    rows = conn.execute(
                        select(assistant_entries).where(assistant_entries.c.status == "active")
                    ).all()
                    synonyms = {
                        r.concept: json.loads(r.phrases)
                        for r in conn.execute(select(assistant_synonyms)).all()
                    }
                self._entries = {r.entry_id: entry_from_row(r) for r in rows}
                self._matcher = build_matcher(self._entries, synonyms)
                self._fingerprint = fingerprint
                log_event(log, "assistant_index_built", entries=len(self._entries))
            return self._matcher, self._entries

    # -- conversations -------------------------------------------------------------------

    def _conversation(self, conn: Any, terminal_id: str, conversation_id: str) -> Any:
        row = conn.execute(
            select(assistant_conversations).where(
                assistant_conversations.c.conversation_id == conversation_id
            )
        ).first()
        if row is None:
            raise NotFound(
                f"conversation_id: no conversation {conversation_id[:64]!r}",
                field="conversation_id",
                reason="unknown_conversation",
            )
        if row.terminal_id != terminal_id:
            raise PermissionDenied(
                "conversation_id: the conversation belongs to another terminal",
                rule="own_conversation",
                field="conversation_id",
            )
        return row

    def _turn(
        self, conn: Any, conversation_id: str, speaker: str, text: str, entry_id: str = "",
        confidence: float = 0.0,
    ) -> None:  # fmt: skip
        conn.execute(
            insert(assistant_turns).values(
                conversation_id=conversation_id, at=self.clock(), speaker=speaker,
                text=text, entry_id=entry_id, confidence=confidence,
            )
        )  # fmt: skip

    def _keep_unanswered(
        self, conn: Any, terminal_id: str, conversation_id: str, lang: str, text: str
    ) -> None:
        """Keep a question for staff; the same question again counts on its open row."""
        norm = normalize(text)[:500]
        found = conn.execute(
            select(assistant_questions.c.question_id).where(
                assistant_questions.c.norm == norm,
                assistant_questions.c.lang == lang,
                assistant_questions.c.status.in_(("open", "proposed")),
            )
        ).first()
        if found is not None:
            conn.execute(
                update(assistant_questions)
                .where(assistant_questions.c.question_id == found.question_id)
                .values(times_asked=assistant_questions.c.times_asked + 1, asked_at=self.clock())
            )
            return
        conn.execute(
            insert(assistant_questions).values(
                lang=lang, text=text, norm=norm, terminal_id=terminal_id,
                conversation_id=conversation_id, asked_at=self.clock(), status="open",
                times_asked=1,
            )
        )  # fmt: skip

    def _handover(self, conn: Any, conversation_id: str, reason: str, topic: str = "") -> None:
        conn.execute(
            update(assistant_conversations)
            .where(assistant_conversations.c.conversation_id == conversation_id)
            .values(handover_reason=reason, topic=topic, updated_at=self.clock())
        )
        note = f"handed over: {reason}" + (f" ({topic})" if topic else "")
        self._turn(conn, conversation_id, "system", note)
        log_event(
            log, "assistant_handover", conversation=conversation_id, reason=reason, topic=topic
        )

    def _open(self, conn: Any, terminal_id: str, lang: str) -> str:
        conversation_id = f"conv-{random_hex(12)}"
        now = self.clock()
        conn.execute(
            insert(assistant_conversations).values(
                conversation_id=conversation_id, terminal_id=terminal_id, lang=lang,
                started_at=now, updated_at=now, call_id="", handover_reason="", topic="",
                unhelpful_streak=0, last_question="",
            )
        )  # fmt: skip
        return conversation_id

    def ask(self, terminal_id: str, conversation_id: str, lang: str, text: str) -> Reply:
        if lang not in LANGS:
            raise InvalidArgument("lang", f"one of {', '.join(LANGS)}", reason="unknown_language")
        # Never keep a card number a customer typed (the transcript is shown to staff).
        text = redact_text(check_text("text", text.strip(), max_len=MAX_QUESTION))
        check_text("conversation_id", conversation_id, required=False)
        matcher, entries = self.index()
        decision = rules.decide(matcher, text, self.threshold)
        with write_transaction(self.engine) as conn:
            if conversation_id:
                row = self._conversation(conn, terminal_id, conversation_id)
                turns = conn.execute(
                    select(func.count()).where(assistant_turns.c.conversation_id == conversation_id)
                ).scalar_one()
                if turns >= MAX_TURNS:
                    raise InvalidArgument(
                        "conversation_id", f"at most {MAX_TURNS} turns", reason="too_long"
                    )
                conn.execute(
                    update(assistant_conversations)
                    .where(assistant_conversations.c.conversation_id == row.conversation_id)
                    .values(lang=lang, updated_at=self.clock())
                )
            else:
                conversation_id = self._open(conn, terminal_id, lang)
            self._turn(conn, conversation_id, "customer", text)
            if decision.reason == rules.SENSITIVE:
                self._handover(conn, conversation_id, decision.reason, decision.topic)
                return Reply(
                    conversation_id, HANDOVER, reason=decision.reason, topic=decision.topic
                )
            if decision.hands_over:
                self._keep_unanswered(conn, terminal_id, conversation_id, lang, text)
                self._handover(conn, conversation_id, decision.reason)
                return Reply(
                    conversation_id, HANDOVER, confidence=decision.confidence,
                    reason=decision.reason,
                )  # fmt: skip
            entry = entries[decision.entry_id]
            answer = answer_in(entry, lang)
            self._turn(
                conn, conversation_id, "assistant", answer, decision.entry_id, decision.confidence
            )
            conn.execute(
                update(assistant_conversations)
                .where(assistant_conversations.c.conversation_id == conversation_id)
                .values(last_question=text)
            )
        return Reply(
            conversation_id, ANSWER, answer=answer, entry_id=decision.entry_id,
            action=entry.action, confidence=decision.confidence,
        )  # fmt: skip

    def feedback(self, terminal_id: str, conversation_id: str, helpful: bool) -> Reply:
        check_text("conversation_id", conversation_id)
        with write_transaction(self.engine) as conn:
            row = self._conversation(conn, terminal_id, conversation_id)
            streak, hand_over = rules.after_feedback(row.unhelpful_streak, helpful)
            conn.execute(
                update(assistant_conversations)
                .where(assistant_conversations.c.conversation_id == conversation_id)
                .values(unhelpful_streak=streak, updated_at=self.clock())
            )
            self._turn(
                conn,
                conversation_id,
                "customer",
                "(this helped)" if helpful else "(this did not help)",
            )
            if not helpful and row.last_question:
                # An answer that did not help: the question goes to staff to answer better.
                self._keep_unanswered(
                    conn, terminal_id, conversation_id, row.lang, row.last_question
                )
            if hand_over:
                self._handover(conn, conversation_id, rules.UNHELPFUL)
                return Reply(conversation_id, HANDOVER, reason=rules.UNHELPFUL)
        return Reply(conversation_id, NOTED)

    def hand_over(self, terminal_id: str, conversation_id: str, reason: str) -> Reply:
        check_text("conversation_id", conversation_id)
        reason = reason or rules.REQUESTED
        if reason not in rules.HANDOVER_REASONS:
            raise InvalidArgument(
                "reason", f"one of {', '.join(rules.HANDOVER_REASONS)}", reason="unknown_reason"
            )
        with write_transaction(self.engine) as conn:
            row = self._conversation(conn, terminal_id, conversation_id)
            if reason == rules.REQUESTED or not row.handover_reason:
                self._handover(conn, conversation_id, reason, row.topic)
        return Reply(conversation_id, HANDOVER, reason=reason, topic=row.topic)

    def attach_call(self, terminal_id: str, conversation_id: str, call_id: str) -> None:
        check_text("conversation_id", conversation_id)
        check_text("call_id", call_id)
        with write_transaction(self.engine) as conn:
            self._conversation(conn, terminal_id, conversation_id)
            conn.execute(
                update(assistant_conversations)
                .where(assistant_conversations.c.conversation_id == conversation_id)
                .values(call_id=call_id, updated_at=self.clock())
            )
            self._turn(conn, conversation_id, "system", f"teller call {call_id}")

    def transcript(self, conversation_id: str, call_id: str) -> tuple[Any, list[Any]]:
        """The conversation (by its id, or by the call its hand-over opened) and its turns."""
        if bool(conversation_id) == bool(call_id):
            raise InvalidArgument(
                "conversation_id", "give the conversation_id or the call_id", reason="one_of"
            )
        check_text("conversation_id", conversation_id, required=False)
        check_text("call_id", call_id, required=False)
        table = assistant_conversations
        where = (
            table.c.conversation_id == conversation_id
            if conversation_id
            else table.c.call_id == call_id
        )
        with self.engine.connect() as conn:
            row = conn.execute(
                select(table).where(where).order_by(table.c.updated_at.desc())
            ).first()
            if row is None:
                field = "conversation_id" if conversation_id else "call_id"
                raise NotFound(
                    f"{field}: no assistant conversation", field=field, reason="no_transcript"
                )
            turns = conn.execute(
                select(assistant_turns)
                .where(assistant_turns.c.conversation_id == row.conversation_id)
                .order_by(assistant_turns.c.turn_id)
            ).all()
        return row, list(turns)
