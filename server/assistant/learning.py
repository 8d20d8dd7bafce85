"""How the electronic teller learns, as plain functions: the questions it could not
answer, a teller's proposed answer, a lobby manager's decision, the entries and their
import. An approved proposal enters the knowledge base at once (the service's index sees
the change on the next question)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update

from branchline.common.errors import (
    MAX_TEXT,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    check_text,
)
from branchline.common.logs import log_event
from branchline.server.assistant.knowledge import EntryText, KnowledgeFile, check_entry
from branchline.server.assistant.schema import (
    assistant_entries,
    assistant_proposals,
    assistant_questions,
    assistant_synonyms,
)
from branchline.server.assistant.service import entry_from_row
from branchline.server.storage import write_transaction

log = logging.getLogger("branchline.server.assistant")

QUESTION_STATUSES = ("open", "proposed", "answered", "dismissed")
PROPOSAL_STATUSES = ("pending", "approved", "rejected")

Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


def text_to_json(text: EntryText) -> str:
    data = asdict(text)
    data["questions"] = {k: list(v) for k, v in text.questions.items()}
    return json.dumps(data, ensure_ascii=False)


def text_from_json(raw: str) -> EntryText:
    data = json.loads(raw)
    return EntryText(
        questions={k: tuple(v) for k, v in data["questions"].items()},
        answers=dict(data["answers"]),
        action=data.get("action", ""),
        topic=data.get("topic", ""),
    )


def unanswered(engine: Engine, status: str) -> list[Any]:
    if status and status not in QUESTION_STATUSES:
        raise InvalidArgument("status", f"one of {', '.join(QUESTION_STATUSES)}")
    wanted = (status,) if status else ("open", "proposed")
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(assistant_questions)
                .where(assistant_questions.c.status.in_(wanted))
                .order_by(assistant_questions.c.asked_at.desc())
                .limit(500)
            ).all()
        )


def _entry_row(conn: Any, entry_id: str) -> Any:
    row = conn.execute(
        select(assistant_entries).where(assistant_entries.c.entry_id == entry_id)
    ).first()
    if row is None:
        raise NotFound(
            f"entry_id: no knowledge-base entry {entry_id[:64]!r}",
            field="entry_id",
            reason="unknown_entry",
        )
    return row


def propose(
    engine: Engine, actor: str, question_id: int, entry_id: str, text: EntryText,
    clock: Clock = _now,
) -> Any:  # fmt: skip
    """A teller's answer: to an unanswered question (``question_id``) and/or a change to an
    existing entry (``entry_id``). It waits for a lobby manager."""
    check_text("entry_id", entry_id, required=False)
    if question_id < 0:
        raise InvalidArgument("question_id", "must not be negative")
    with write_transaction(engine) as conn:
        if question_id:
            question = conn.execute(
                select(assistant_questions).where(assistant_questions.c.question_id == question_id)
            ).first()
            if question is None:
                raise NotFound(
                    f"question_id: no question {question_id}", field="question_id",
                    reason="unknown_question",
                )  # fmt: skip
            if question.status not in ("open", "proposed"):
                raise FailedPrecondition(
                    f"question_id: question {question_id} is {question.status} already",
                    field="question_id",
                    reason="question_closed",
                )
            conn.execute(
                update(assistant_questions)
                .where(assistant_questions.c.question_id == question_id)
                .values(status="proposed")
            )
        if entry_id:
            _entry_row(conn, entry_id)
        inserted = conn.execute(
            insert(assistant_proposals).values(
                question_id=question_id, entry_id=entry_id, text=text_to_json(text),
                status="pending", proposed_by=actor, proposed_at=clock(), decided_by="",
                decided_at=None, note="",
            )
        ).inserted_primary_key  # fmt: skip
        assert inserted is not None
        proposal_id = inserted[0]
    log_event(log, "assistant_proposed", proposal=proposal_id, by=actor, question=question_id)
    return proposal(engine, int(proposal_id))


def proposal(engine: Engine, proposal_id: int) -> Any:
    with engine.connect() as conn:
        row = conn.execute(
            select(assistant_proposals).where(assistant_proposals.c.proposal_id == proposal_id)
        ).first()
    if row is None:
        raise NotFound(
            f"proposal_id: no proposal {proposal_id}",
            field="proposal_id",
            reason="unknown_proposal",
        )
    return row


def proposals(engine: Engine, status: str) -> list[Any]:
    if status and status not in PROPOSAL_STATUSES:
        raise InvalidArgument("status", f"one of {', '.join(PROPOSAL_STATUSES)}")
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(assistant_proposals)
                .where(assistant_proposals.c.status == (status or "pending"))
                .order_by(assistant_proposals.c.proposal_id)
                .limit(500)
            ).all()
        )


def question_texts(engine: Engine, ids: list[int]) -> dict[int, str]:
    if not ids:
        return {}
    with engine.connect() as conn:
        rows = conn.execute(
            select(assistant_questions.c.question_id, assistant_questions.c.text).where(
                assistant_questions.c.question_id.in_(ids)
            )
        ).all()
    return {r.question_id: r.text for r in rows}


def _merge(old: EntryText, new: EntryText) -> EntryText:
    questions = {
        lang: tuple(dict.fromkeys((*old.questions.get(lang, ()), *new.questions.get(lang, ()))))
        for lang in set(old.questions) | set(new.questions)
    }
    answers = {lang: new.answers.get(lang) or old.answers.get(lang, "") for lang in old.answers}
    return EntryText(questions, answers, new.action, new.topic or old.topic)


def _entry_values(text: EntryText) -> dict[str, Any]:
    return {
        "topic": text.topic,
        "action": text.action,
        "questions_en": json.dumps(list(text.questions.get("en", ())), ensure_ascii=False),
        "questions_zh": json.dumps(list(text.questions.get("zh-CN", ())), ensure_ascii=False),
        "answer_en": text.answers.get("en", ""),
        "answer_zh": text.answers.get("zh-CN", ""),
    }


def decide(
    engine: Engine, actor: str, proposal_id: int, approve: bool, note: str, clock: Clock = _now
) -> Any:
    """A lobby manager's decision; an approval writes the entry (new or changed)."""
    note = check_text("note", note.strip(), max_len=MAX_TEXT, required=not approve)
    with write_transaction(engine) as conn:
        row = conn.execute(
            select(assistant_proposals).where(assistant_proposals.c.proposal_id == proposal_id)
        ).first()
        if row is None:
            raise NotFound(
                f"proposal_id: no proposal {proposal_id}", field="proposal_id",
                reason="unknown_proposal",
            )  # fmt: skip
        if row.status != "pending":
            raise FailedPrecondition(
                f"proposal_id: proposal {proposal_id} is {row.status} already",
                field="proposal_id",
                reason="already_decided",
            )
        now = clock()
        entry_id = row.entry_id
        if approve:
            text = text_from_json(row.text)
            if entry_id:
                old = _entry_row(conn, entry_id)
                merged = _merge(entry_from_row(old), text)
                conn.execute(
                    update(assistant_entries)
                    .where(assistant_entries.c.entry_id == entry_id)
                    .values(**_entry_values(merged), status="active", version=old.version + 1,
                            updated_by=actor, updated_at=now)
                )  # fmt: skip
            else:
                entry_id = f"learned-{proposal_id}"
                conn.execute(
                    insert(assistant_entries).values(
                        entry_id=entry_id, **_entry_values(text), status="active", version=1,
                        updated_by=actor, updated_at=now,
                    )
                )  # fmt: skip
        conn.execute(
            update(assistant_proposals)
            .where(assistant_proposals.c.proposal_id == proposal_id)
            .values(status="approved" if approve else "rejected", decided_by=actor,
                    decided_at=now, note=note, entry_id=entry_id)
        )  # fmt: skip
        if row.question_id:
            conn.execute(
                update(assistant_questions)
                .where(assistant_questions.c.question_id == row.question_id)
                .values(status="answered" if approve else "open")
            )
    log_event(log, "assistant_decided", proposal=proposal_id, by=actor, approved=approve)
    return proposal(engine, proposal_id)


def entries(engine: Engine, include_retired: bool) -> list[Any]:
    query = select(assistant_entries).order_by(assistant_entries.c.entry_id)
    if not include_retired:
        query = query.where(assistant_entries.c.status == "active")
    with engine.connect() as conn:
        return list(conn.execute(query).all())


def retire(engine: Engine, actor: str, entry_id: str, clock: Clock = _now) -> Any:
    check_text("entry_id", entry_id)
    with write_transaction(engine) as conn:
        row = _entry_row(conn, entry_id)
        if row.status == "retired":
            raise FailedPrecondition(
                f"entry_id: {entry_id} is retired already", field="entry_id", reason="retired"
            )
        conn.execute(
            update(assistant_entries)
            .where(assistant_entries.c.entry_id == entry_id)
            .values(status="retired", version=row.version + 1, updated_by=actor, updated_at=clock())
        )
        return _entry_row(conn, entry_id)


def import_file(
    engine: Engine, kb: KnowledgeFile, actor: str, clock: Clock = _now
) -> dict[str, int]:
    """Add or update the file's entries (by id) and replace the synonym table. Entries not in
    the file (learned ones) are kept; an entry whose text is unchanged is left alone."""
    counts = {"added": 0, "changed": 0, "unchanged": 0}
    now = clock()
    with write_transaction(engine) as conn:
        for entry_id, text in kb.entries.items():
            values = _entry_values(text)
            row = conn.execute(
                select(assistant_entries).where(assistant_entries.c.entry_id == entry_id)
            ).first()
            if row is None:
                conn.execute(
                    insert(assistant_entries).values(
                        entry_id=entry_id, **values, status="active", version=1,
                        updated_by=actor, updated_at=now,
                    )
                )  # fmt: skip
                counts["added"] += 1
            elif any(getattr(row, k) != v for k, v in values.items()) or row.status != "active":
                conn.execute(
                    update(assistant_entries)
                    .where(assistant_entries.c.entry_id == entry_id)
                    .values(**values, status="active", version=row.version + 1,
                            updated_by=actor, updated_at=now)
                )  # fmt: skip
                counts["changed"] += 1
            else:
                counts["unchanged"] += 1
        conn.execute(delete(assistant_synonyms))
        for concept, phrases in kb.synonyms.items():
            conn.execute(
                insert(assistant_synonyms).values(
                    concept=concept[:64], phrases=json.dumps(list(phrases), ensure_ascii=False)
                )
            )
    log_event(log, "assistant_imported", by=actor, **counts)
    return counts


def check_proposal_text(
    questions: dict[str, list[str]], answers: dict[str, str], action: str, topic: str
) -> EntryText:
    return check_entry("text", questions, answers, action, topic, complete=False)
