"""Tables of the electronic teller (migration ``0011_assistant``).

``assistant_entries`` is the knowledge base (question variants as JSON lists per
language), ``assistant_synonyms`` the bank's synonym table, ``assistant_conversations``
and ``assistant_turns`` what each customer asked and was told (the transcript a teller
sees after a hand-over), ``assistant_questions`` the questions it could not answer (kept
for staff), ``assistant_proposals`` the tellers' answers waiting for a lobby manager.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Index, Integer, String, Table, Text

from branchline.server.storage.schema import UtcDateTime, metadata

ID = 64
SERIAL = BigInteger().with_variant(Integer(), "sqlite")

assistant_entries = Table(
    "assistant_entries",
    metadata,
    Column("entry_id", String(ID), primary_key=True),
    Column("topic", String(32), nullable=False),
    # "", deposit, withdrawal, statement, rates, cheque
    Column("action", String(16), nullable=False),
    Column("questions_en", Text, nullable=False),
    Column("questions_zh", Text, nullable=False),
    Column("answer_en", Text, nullable=False),
    Column("answer_zh", Text, nullable=False),
    # active, retired
    Column("status", String(16), nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_by", String(200), nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

assistant_synonyms = Table(
    "assistant_synonyms",
    metadata,
    Column("concept", String(ID), primary_key=True),
    Column("phrases", Text, nullable=False),
)

assistant_conversations = Table(
    "assistant_conversations",
    metadata,
    Column("conversation_id", String(ID), primary_key=True),
    Column("terminal_id", String(128), nullable=False),
    Column("lang", String(8), nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("call_id", String(ID), nullable=False),
    Column("handover_reason", String(32), nullable=False),
    Column("topic", String(32), nullable=False),
    Column("unhelpful_streak", Integer, nullable=False),
    # The last question answered (kept for staff if the customer says it did not help).
    Column("last_question", Text, nullable=False),
)
Index("ix_assistant_conversations_call_id", assistant_conversations.c.call_id)

assistant_turns = Table(
    "assistant_turns",
    metadata,
    Column("turn_id", SERIAL, primary_key=True, autoincrement=True),
    Column("conversation_id", String(ID), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    # customer, assistant, system
    Column("speaker", String(16), nullable=False),
    Column("text", Text, nullable=False),
    Column("entry_id", String(ID), nullable=False),
    Column("confidence", Float, nullable=False),
)
Index("ix_assistant_turns_conversation_id", assistant_turns.c.conversation_id)

assistant_questions = Table(
    "assistant_questions",
    metadata,
    Column("question_id", SERIAL, primary_key=True, autoincrement=True),
    Column("lang", String(8), nullable=False),
    Column("text", Text, nullable=False),
    # The normalized text: the same question asked again counts on one row.
    Column("norm", String(500), nullable=False),
    Column("terminal_id", String(128), nullable=False),
    Column("conversation_id", String(ID), nullable=False),
    Column("asked_at", UtcDateTime, nullable=False),
    # open, proposed, answered, dismissed
    Column("status", String(16), nullable=False),
    Column("times_asked", Integer, nullable=False),
)
Index("ix_assistant_questions_status", assistant_questions.c.status)

assistant_proposals = Table(
    "assistant_proposals",
    metadata,
    Column("proposal_id", SERIAL, primary_key=True, autoincrement=True),
    Column("question_id", BigInteger, nullable=False),
    Column("entry_id", String(ID), nullable=False),
    # The proposed entry text as JSON (questions and answers by language, action, topic).
    Column("text", Text, nullable=False),
    # pending, approved, rejected
    Column("status", String(16), nullable=False),
    Column("proposed_by", String(200), nullable=False),
    Column("proposed_at", UtcDateTime, nullable=False),
    Column("decided_by", String(200), nullable=False),
    Column("decided_at", UtcDateTime, nullable=True),
    Column("note", Text, nullable=False),
)
Index("ix_assistant_proposals_status", assistant_proposals.c.status)
