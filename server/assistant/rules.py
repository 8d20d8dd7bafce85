"""The hand-over rules, as plain functions over the conversation's state.

- a sensitive topic (``sensitive.py``) always hands over, whatever matches;
- a best match below ``ANSWER_THRESHOLD`` confidence hands over (and the question is kept
  for staff: it is how the assistant learns);
- two answers in a row marked "this did not help" hand over;
- "talk to a person" hands over at once (the kiosk keeps that button on screen).
"""

from __future__ import annotations

from dataclasses import dataclass

from branchline.server.assistant.matcher import Match, Matcher
from branchline.server.assistant.sensitive import sensitive_topic

# The confidence an answer needs (bench/assistant_accuracy.py reports what it buys).
ANSWER_THRESHOLD = 0.42
# Unhelpful answers in a row that hand over.
UNHELPFUL_LIMIT = 2

SENSITIVE = "sensitive"
LOW_CONFIDENCE = "low_confidence"
UNHELPFUL = "unhelpful"
REQUESTED = "requested"
HANDOVER_REASONS = (SENSITIVE, LOW_CONFIDENCE, UNHELPFUL, REQUESTED)


@dataclass(frozen=True)
class Decision:
    """``entry_id`` to answer with, or a hand-over ``reason`` (and ``topic``)."""

    entry_id: str = ""
    confidence: float = 0.0
    reason: str = ""
    topic: str = ""
    match: Match | None = None

    @property
    def hands_over(self) -> bool:
        return bool(self.reason)


def decide(matcher: Matcher, question: str, threshold: float = ANSWER_THRESHOLD) -> Decision:
    topic = sensitive_topic(question)
    match = matcher.best(question)
    confidence = match.confidence if match is not None else 0.0
    if topic:
        return Decision(reason=SENSITIVE, topic=topic, confidence=confidence, match=match)
    if match is None or confidence < threshold:
        return Decision(reason=LOW_CONFIDENCE, confidence=confidence, match=match)
    return Decision(entry_id=match.entry_id, confidence=confidence, match=match)


def after_feedback(streak: int, helpful: bool) -> tuple[int, bool]:
    """The new unhelpful streak, and whether it hands over."""
    if helpful:
        return 0, False
    streak += 1
    return streak, streak >= UNHELPFUL_LIMIT
