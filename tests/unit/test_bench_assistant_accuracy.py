"""``make bench``'s electronic-teller accuracy: every figure is there for each set and
language, the sets stay apart from the knowledge base, no sensitive question is ever
answered, and the dev set (tuned on) meets the goal. The held-out figure is reported, not
asserted against a goal: a test that must pass on it would make it a tuning set."""

from __future__ import annotations

import json

from bench import assistant_accuracy
from branchline.server.assistant import knowledge
from branchline.server.assistant.matcher import normalize


def test_the_figures_and_never_answering_a_sensitive_question() -> None:
    figures = assistant_accuracy.run()
    for prefix in ("heldout_", "dev_"):
        assert figures[f"{prefix}sensitive_answered"] == 0, figures
        assert figures[f"{prefix}sensitive_detected"] == 1.0, figures
        for lang in ("", "_en", "_zh"):
            assert 0 < figures[f"{prefix}top1_accuracy{lang}"] <= 1, (prefix, lang)
            assert 0 <= figures[f"{prefix}wrong_confident_answers{lang}"], (prefix, lang)
    assert figures["dev_correct_or_handed_over"] >= 0.9, figures
    assert figures["dev_questions"] >= 60 and figures["heldout_questions"] >= 60
    assert figures["heldout_questions_en"] >= 30 and figures["heldout_questions_zh"] >= 30


def test_no_question_of_either_set_is_in_the_knowledge_base() -> None:
    kb = knowledge.load()
    variants = {
        normalize(q) for e in kb.entries.values() for qs in e.questions.values() for q in qs
    }
    for path in (assistant_accuracy.DEV, assistant_accuracy.HELD_OUT):
        questions = json.loads(path.read_text(encoding="utf-8"))["questions"]
        assert {e["lang"] for e in questions} == {"en", "zh-CN"}
        copied = [q["text"] for q in questions if normalize(q["text"]) in variants]
        assert copied == [], f"{path.name}: in the knowledge base word for word: {copied}"
        entries = {q["expect"] for q in questions} - {"none"}
        assert all(e.startswith("sensitive:") or e in kb.entries for e in entries)


def test_the_sets_share_no_question() -> None:
    texts = [
        {normalize(q["text"]) for q in json.loads(p.read_text(encoding="utf-8"))["questions"]}
        for p in (assistant_accuracy.DEV, assistant_accuracy.HELD_OUT)
    ]
    assert texts[0].isdisjoint(texts[1])
