"""``make bench``'s electronic-teller accuracy: every figure is there, the held-out sets
stay apart from the knowledge base, the goal holds (correct or handed over >= 90 %) and no
sensitive question is ever answered."""

from __future__ import annotations

import json

from bench import assistant_accuracy
from branchline.server.assistant import knowledge
from branchline.server.assistant.matcher import normalize


def test_the_figures_meet_the_goal_and_never_answer_a_sensitive_question() -> None:
    figures = assistant_accuracy.run()
    for prefix in ("", "fresh_"):
        assert figures[f"{prefix}correct_or_handed_over"] >= 0.9, figures
        assert figures[f"{prefix}sensitive_answered"] == 0, figures
        assert figures[f"{prefix}sensitive_detected"] == 1.0, figures
    assert figures["questions"] >= 60 and figures["fresh_questions"] >= 30
    assert 0 < figures["top1_accuracy_en"] <= 1 and 0 < figures["top1_accuracy_zh"] <= 1


def test_no_held_out_question_is_in_the_knowledge_base() -> None:
    kb = knowledge.load()
    variants = {
        normalize(q) for e in kb.entries.values() for qs in e.questions.values() for q in qs
    }
    for path in (assistant_accuracy.HELD_OUT, assistant_accuracy.FRESH):
        questions = json.loads(path.read_text(encoding="utf-8"))["questions"]
        assert {e["lang"] for e in questions} == {"en", "zh-CN"}
        copied = [q["text"] for q in questions if normalize(q["text"]) in variants]
        assert copied == [], f"{path.name}: in the knowledge base word for word: {copied}"
        entries = {q["expect"] for q in questions} - {"none"}
        assert all(e.startswith("sensitive:") or e in kb.entries for e in entries)
