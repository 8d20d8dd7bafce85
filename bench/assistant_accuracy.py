"""Electronic teller: accuracy and hand-over rate on questions in other words (zh-CN, en).

Two sets, both written apart from the knowledge base:

- ``assistant_dev.json``: the development set. The synonym table, the question variants
  and the matcher were tuned on it, so its figures are optimistic; its wrong answers are
  printed (that is what it is for).
- ``assistant_heldout.json``: the held-out set, never tuned on. Its figures are the
  estimate (``heldout_*``); the bench prints its counts only, never which questions went
  wrong (looking at them is how a set becomes a tuning set).

Each question is scored as the server decides it (``rules.decide``: sensitive topics
first, then the matcher and the answer threshold): *correct* (the expected entry),
*handed over* (low confidence or sensitive), or *wrong* (a confident answer from another
entry, or any answer to a question the base does not cover or a sensitive one). Goal from
issue 14: correct + handed over >= 90 %, and no answer at all to a sensitive question.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from branchline.server.assistant import knowledge, rules

DATA = Path(__file__).parent / "data"
DEV = DATA / "assistant_dev.json"
HELD_OUT = DATA / "assistant_heldout.json"
LANGS = {"en": "en", "zh-CN": "zh"}


def _score(tally: Counter[str], lang: str, expect: str, decision: rules.Decision) -> bool:
    """Count one question; True when it went wrong."""
    tally[f"n_{lang}"] += 1
    if expect.startswith("sensitive:"):
        tally["sensitive"] += 1
        if decision.reason == rules.SENSITIVE:
            tally["sensitive_handed_over"] += 1
        if not decision.hands_over:
            tally["sensitive_answered"] += 1
            tally[f"wrong_{lang}"] += 1
            return True
        tally[f"handed_over_{lang}"] += 1
        return False
    if expect != "none":
        tally[f"answerable_{lang}"] += 1
    if decision.hands_over:
        tally[f"handed_over_{lang}"] += 1
        return False
    if decision.entry_id == expect:
        tally[f"correct_{lang}"] += 1
        return False
    tally[f"wrong_{lang}"] += 1
    return True


def _figures(tally: Counter[str], threshold: float) -> dict[str, float]:
    figures: dict[str, float] = {}
    for short in ("", *LANGS.values()):
        langs = [short] if short else list(LANGS.values())
        n = sum(tally[f"n_{x}"] for x in langs)
        correct = sum(tally[f"correct_{x}"] for x in langs)
        handed = sum(tally[f"handed_over_{x}"] for x in langs)
        answerable = sum(tally[f"answerable_{x}"] for x in langs)
        suffix = f"_{short}" if short else ""
        figures[f"questions{suffix}"] = float(n)
        figures[f"top1_accuracy{suffix}"] = correct / max(answerable, 1)
        figures[f"correct_rate{suffix}"] = correct / max(n, 1)
        figures[f"handover_rate{suffix}"] = handed / max(n, 1)
        figures[f"correct_or_handed_over{suffix}"] = (correct + handed) / max(n, 1)
        figures[f"wrong_confident_answers{suffix}"] = float(sum(tally[f"wrong_{x}"] for x in langs))
    figures["sensitive_questions"] = float(tally["sensitive"])
    figures["sensitive_answered"] = float(tally["sensitive_answered"])
    figures["sensitive_detected"] = tally["sensitive_handed_over"] / max(tally["sensitive"], 1)
    figures["threshold"] = threshold
    return figures


def evaluate(
    threshold: float = rules.ANSWER_THRESHOLD, path: Path = DEV
) -> tuple[dict[str, float], list[Any]]:
    """The figures over one set, and its wrong answers (question, decision)."""
    kb = knowledge.load()
    matcher = knowledge.build_matcher(kb.entries, kb.synonyms)
    questions = json.loads(path.read_text(encoding="utf-8"))["questions"]
    tally: Counter[str] = Counter()
    wrong = []
    for q in questions:
        decision = rules.decide(matcher, q["text"], threshold)
        if _score(tally, LANGS[q["lang"]], q["expect"], decision):
            wrong.append((q, decision))
    return _figures(tally, threshold), wrong


def run() -> dict[str, float]:
    """``make bench``: the held-out figures (the estimate), then the dev set's as ``dev_``."""
    held_out, _ = evaluate(path=HELD_OUT)
    dev, _ = evaluate(path=DEV)
    figures = {f"heldout_{k}": v for k, v in held_out.items()}
    figures.update({f"dev_{k}": v for k, v in dev.items() if k != "threshold"})
    return figures


if __name__ == "__main__":
    for name, path in (("dev (tuned on)", DEV), ("held-out (the estimate)", HELD_OUT)):
        figures, wrong = evaluate(path=path)
        print(f"== {name}: {path.name}")
        for key, value in figures.items():
            print(f"{key:34} {value:.3f}")
        if path == DEV:
            for q, d in wrong:
                print("WRONG", q["lang"], q["text"], "expect", q["expect"], "->", d)
