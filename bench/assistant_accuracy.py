"""Electronic teller: top-1 accuracy and hand-over rate on held-out paraphrases (zh-CN, en).

The questions (bench/data/assistant_heldout.json) were written apart from the knowledge
base, in other words. Each is scored as the server decides it (``rules.decide``: sensitive
topics first, then the matcher and the answer threshold): *correct* (the expected entry),
*handed over* (low confidence or sensitive), or *wrong* (a confident answer from another
entry, or any answer to a question the base does not cover). Goal from issue 14: correct +
handed over >= 90 %, and no answer at all to a sensitive question.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from branchline.server.assistant import knowledge, rules

DATA = Path(__file__).parent / "data"
HELD_OUT = DATA / "assistant_heldout.json"
# Written after the tuning on HELD_OUT and never tuned on: the honest estimate.
FRESH = DATA / "assistant_fresh.json"


def evaluate(
    threshold: float = rules.ANSWER_THRESHOLD, path: Path = HELD_OUT
) -> tuple[dict[str, float], list[Any]]:
    kb = knowledge.load()
    matcher = knowledge.build_matcher(kb.entries, kb.synonyms)
    questions = json.loads(path.read_text(encoding="utf-8"))["questions"]
    tally: Counter[str] = Counter()
    wrong = []
    for q in questions:
        decision = rules.decide(matcher, q["text"], threshold)
        expect = q["expect"]
        lang = "zh" if q["lang"] == "zh-CN" else "en"
        tally[f"n_{lang}"] += 1
        if expect.startswith("sensitive:"):
            tally["sensitive"] += 1
            if decision.reason == rules.SENSITIVE:
                tally["sensitive_handed_over"] += 1
                tally["handed_over"] += 1
            else:
                tally["sensitive_answered"] += int(not decision.hands_over)
                tally["handed_over"] += int(decision.hands_over)
                wrong.append((q, decision))
            continue
        if decision.hands_over:
            tally["handed_over"] += 1
            if expect == "none":
                tally["none_handed_over"] += 1
        elif decision.entry_id == expect:
            tally["correct"] += 1
            tally[f"correct_{lang}"] += 1
        else:
            tally["wrong"] += 1
            wrong.append((q, decision))
        if expect not in ("none",):
            tally[f"answerable_{lang}"] += 1
    n = len(questions)
    figures = {
        "questions": float(n),
        "top1_accuracy_en": tally["correct_en"] / max(tally["answerable_en"], 1),
        "top1_accuracy_zh": tally["correct_zh"] / max(tally["answerable_zh"], 1),
        "correct_rate": tally["correct"] / n,
        "handover_rate": tally["handed_over"] / n,
        "correct_or_handed_over": (tally["correct"] + tally["handed_over"]) / n,
        "wrong_confident_answers": float(tally["wrong"]),
        "sensitive_answered": float(tally["sensitive_answered"]),
        "sensitive_detected": tally["sensitive_handed_over"] / max(tally["sensitive"], 1),
        "threshold": threshold,
    }
    return figures, wrong


def run() -> dict[str, float]:
    figures, _ = evaluate()
    fresh, _ = evaluate(path=FRESH)
    figures.update({f"fresh_{k}": v for k, v in fresh.items() if k != "threshold"})
    return figures


if __name__ == "__main__":
    for path in (HELD_OUT, FRESH):
        figures, wrong = evaluate(path=path)
        print(f"== {path.name}")
        for key, value in figures.items():
            print(f"{key:28} {value:.3f}")
        for q, d in wrong:
            print("WRONG", q["lang"], q["text"], "expect", q["expect"], "->", d)
