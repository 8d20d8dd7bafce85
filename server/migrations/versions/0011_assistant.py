"""Electronic teller: knowledge base, synonyms, conversations and their turns, unanswered
questions and the tellers' proposed answers.

On its own branch from 0001_fleet (it refers to no other capability's tables).

Revision ID: 0011_assistant
Revises: 0001_fleet
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0011_assistant"
down_revision: str | None = "0001"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None

_ID = 64


def _time() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _serial() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "assistant_entries",
        sa.Column("entry_id", sa.String(_ID), nullable=False),
        sa.Column("topic", sa.String(32), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("questions_en", sa.Text(), nullable=False),
        sa.Column("questions_zh", sa.Text(), nullable=False),
        sa.Column("answer_en", sa.Text(), nullable=False),
        sa.Column("answer_zh", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("entry_id", name="pk_assistant_entries"),
    )
    op.create_table(
        "assistant_synonyms",
        sa.Column("concept", sa.String(_ID), nullable=False),
        sa.Column("phrases", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("concept", name="pk_assistant_synonyms"),
    )
    op.create_table(
        "assistant_conversations",
        sa.Column("conversation_id", sa.String(_ID), nullable=False),
        sa.Column("terminal_id", sa.String(128), nullable=False),
        sa.Column("lang", sa.String(8), nullable=False),
        sa.Column("started_at", _time(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        sa.Column("call_id", sa.String(_ID), nullable=False),
        sa.Column("handover_reason", sa.String(32), nullable=False),
        sa.Column("topic", sa.String(32), nullable=False),
        sa.Column("unhelpful_streak", sa.Integer(), nullable=False),
        sa.Column("last_question", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("conversation_id", name="pk_assistant_conversations"),
    )
    op.create_index("ix_assistant_conversations_call_id", "assistant_conversations", ["call_id"])
    op.create_table(
        "assistant_turns",
        sa.Column("turn_id", _serial(), autoincrement=True, nullable=False),
        sa.Column("conversation_id", sa.String(_ID), nullable=False),
        sa.Column("at", _time(), nullable=False),
        sa.Column("speaker", sa.String(16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("entry_id", sa.String(_ID), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("turn_id", name="pk_assistant_turns"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_assistant_turns_conversation_id", "assistant_turns", ["conversation_id"])
    op.create_table(
        "assistant_questions",
        sa.Column("question_id", _serial(), autoincrement=True, nullable=False),
        sa.Column("lang", sa.String(8), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("norm", sa.String(500), nullable=False),
        sa.Column("terminal_id", sa.String(128), nullable=False),
        sa.Column("conversation_id", sa.String(_ID), nullable=False),
        sa.Column("asked_at", _time(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("times_asked", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("question_id", name="pk_assistant_questions"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_assistant_questions_status", "assistant_questions", ["status"])
    op.create_table(
        "assistant_proposals",
        sa.Column("proposal_id", _serial(), autoincrement=True, nullable=False),
        sa.Column("question_id", sa.BigInteger(), nullable=False),
        sa.Column("entry_id", sa.String(_ID), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("proposed_by", sa.String(200), nullable=False),
        sa.Column("proposed_at", _time(), nullable=False),
        sa.Column("decided_by", sa.String(200), nullable=False),
        sa.Column("decided_at", _time(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("proposal_id", name="pk_assistant_proposals"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_assistant_proposals_status", "assistant_proposals", ["status"])


def downgrade() -> None:
    op.drop_index("ix_assistant_proposals_status", table_name="assistant_proposals")
    op.drop_table("assistant_proposals")
    op.drop_index("ix_assistant_questions_status", table_name="assistant_questions")
    op.drop_table("assistant_questions")
    op.drop_index("ix_assistant_turns_conversation_id", table_name="assistant_turns")
    op.drop_table("assistant_turns")
    op.drop_index("ix_assistant_conversations_call_id", table_name="assistant_conversations")
    op.drop_table("assistant_conversations")
    op.drop_table("assistant_synonyms")
    op.drop_table("assistant_entries")
