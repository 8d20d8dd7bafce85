"""The knowledge base as data: entries (question variants and answers in zh-CN and en, an
optional guided flow) and the bank's synonym table, read from the shipped file or an
import file, and checked before anything is stored."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from branchline.common.errors import InvalidArgument
from branchline.server.assistant.matcher import Document, Matcher, Synonyms

LANGS = ("en", "zh-CN")
# The guided flows the kiosk can start from an answer ("" for none).
ACTIONS = ("", "deposit", "withdrawal", "statement", "rates", "cheque")
ENTRY_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
MAX_QUESTION = 500
MAX_ANSWER = 2000
MAX_VARIANTS = 50


@dataclass(frozen=True)
class EntryText:
    questions: Mapping[str, tuple[str, ...]]
    answers: Mapping[str, str]
    action: str = ""
    topic: str = ""


@dataclass(frozen=True)
class KnowledgeFile:
    entries: dict[str, EntryText]
    synonyms: dict[str, tuple[str, ...]] = field(default_factory=dict)


def shipped_path() -> Path:
    return Path(str(resources.files("branchline.server.assistant").joinpath("data")))


def _text(where: str, value: Any, max_len: int, required: bool = True) -> str:
    if not isinstance(value, str):
        raise InvalidArgument(where, "must be text")
    value = value.strip()
    if required and not value:
        raise InvalidArgument(where, "is required", reason="required")
    if len(value) > max_len:
        raise InvalidArgument(where, f"is {len(value)} characters, at most {max_len}")
    return value


def check_entry(
    where: str,
    questions: Mapping[str, Sequence[str]],
    answers: Mapping[str, str],
    action: str,
    topic: str = "",
    complete: bool = True,
) -> EntryText:
    """An entry's text, checked: at least one question and an answer in each language
    (``complete``), or in at least one language (a teller's proposal: the answer in the
    other language falls back to this one)."""
    if action not in ACTIONS:
        raise InvalidArgument(
            f"{where}.action", f"one of {', '.join(a or '(none)' for a in ACTIONS)}"
        )
    checked: dict[str, tuple[str, ...]] = {}
    for lang in LANGS:
        variants = [
            _text(f"{where}.questions.{lang}[{i}]", q, MAX_QUESTION)
            for i, q in enumerate(questions.get(lang, ()))
        ]
        if not variants and complete:
            raise InvalidArgument(f"{where}.questions.{lang}", "at least one question is required")
        if len(variants) > MAX_VARIANTS:
            raise InvalidArgument(f"{where}.questions.{lang}", f"at most {MAX_VARIANTS}")
        checked[lang] = tuple(dict.fromkeys(variants))
    if not any(checked.values()):
        raise InvalidArgument(f"{where}.questions", "at least one question is required")
    texts = {
        lang: _text(f"{where}.answer.{lang}", answers.get(lang, ""), MAX_ANSWER, complete)
        for lang in LANGS
    }
    if not any(texts.values()):
        raise InvalidArgument(f"{where}.answer", "an answer is required", reason="required")
    return EntryText(checked, texts, action, _text(f"{where}.topic", topic, 32, required=False))


def answer_in(entry: EntryText, lang: str) -> str:
    """The entry's answer in ``lang``, or in the other language when it has none."""
    return entry.answers.get(lang) or next((a for a in entry.answers.values() if a), "")


def parse(data: Any) -> KnowledgeFile:
    """A knowledge-base document (the shipped file's shape); errors name the entry."""
    if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
        raise InvalidArgument("entries", "the file must be an object with a list of entries")
    entries: dict[str, EntryText] = {}
    for i, raw in enumerate(data["entries"]):
        where = f"entries[{i}]"
        if not isinstance(raw, dict):
            raise InvalidArgument(where, "must be an object")
        entry_id = raw.get("id")
        if not isinstance(entry_id, str) or not ENTRY_ID.match(entry_id):
            raise InvalidArgument(f"{where}.id", "lower-case letters, digits, _ and -, 1-64")
        if entry_id in entries:
            raise InvalidArgument(f"{where}.id", f"{entry_id!r} appears twice")
        questions, answers = raw.get("questions", {}), raw.get("answer", {})
        if not isinstance(questions, dict) or not isinstance(answers, dict):
            raise InvalidArgument(where, "questions and answer must be objects by language")
        entries[entry_id] = check_entry(
            where, questions, answers, raw.get("action", ""), raw.get("topic", "")
        )
    synonyms_raw = data.get("synonyms", {})
    if not isinstance(synonyms_raw, dict):
        raise InvalidArgument("synonyms", "must be an object of concept -> phrases")
    synonyms = {}
    for concept, phrases in synonyms_raw.items():
        if not isinstance(phrases, list) or not all(isinstance(p, str) for p in phrases):
            raise InvalidArgument(f"synonyms.{concept}", "must be a list of phrases")
        synonyms[str(concept)] = tuple(phrases)
    return KnowledgeFile(entries, synonyms)


def load(path: Path | None = None) -> KnowledgeFile:
    """The shipped knowledge base, or the file at ``path``."""
    path = path or shipped_path() / "knowledge_base.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidArgument("file", f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise InvalidArgument("file", f"{path} is not JSON: {exc}") from None
    return parse(data)


# An entry's answers speak for it too, more weakly than its questions (0: not indexed);
# chosen on the dev set and the base's own variants left out in turn (docs/flows/assistant.md).
ANSWER_SCALE = 0.8


def build_matcher(
    entries: Mapping[str, EntryText], synonyms: Mapping[str, Sequence[str]]
) -> Matcher:
    docs = [
        Document(entry_id, question)
        for entry_id, entry in entries.items()
        for lang in LANGS
        for question in entry.questions.get(lang, ())
    ]
    if ANSWER_SCALE:
        docs += [
            Document(entry_id, answer, ANSWER_SCALE)
            for entry_id, entry in entries.items()
            for answer in entry.answers.values()
            if answer
        ]
    return Matcher(docs, Synonyms(synonyms))
