"""The offline matcher: TF-IDF over character n-grams (Chinese) and words (English).

Nothing is downloaded and no model file is loaded: the index is built from the knowledge
base's question variants when it changes. Chinese has no spaces, so Chinese runs are cut
into overlapping character unigrams and bigrams (most Chinese words are one or two
characters, so bigrams cover words without a segmenter); English runs into lower-cased
words with a light suffix stemmer, minus stop words, plus character trigrams of each word
(tolerates typos and word forms). The bank's synonym table (``synonyms`` in the knowledge
base file: "put money in" -> ``deposit``) adds a concept token wherever a phrase appears,
so paraphrases in other words meet on the concept.

Each question variant is a document (and each answer, a weaker one: ``Document.scale``);
an entry's score is the best cosine similarity of the question against its documents or
against all its variants together. ``confidence`` is that score, lowered when the runner-up
entry is almost as close (an ambiguous question).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
WORD = re.compile(r"[a-z0-9]+")
# Words that carry no meaning for matching (English); Chinese particles are single
# characters whose weight IDF keeps low anyway, and a few are dropped here.
STOP_EN = frozenset(
    "a an the i me my we our you your is are am was were be been do does did can could "
    "would should will shall may might to of in on at for from by with and or if it its "
    "this that there here what how when where which who why please want need like get "
    "about some any have has had just so as than then into up out not no yes hi hello "
    "tell know help".split()
)
STOP_ZH = frozenset("的了吗呢吧啊呀么我你您是在有要想请问怎样如何可以能这那个和与")
# Filler pairs of characters (question words, politeness) that say nothing of the topic.
STOP_ZH_PAIRS = frozenset(
    "可以 哪里 在哪 哪儿 什么 怎么 怎样 如何 请问 我想 我要 一下 能不 不能 可不 不可 是不 "
    "不是 有没 没有 吗？ 我的 你们 我们 这里 这个 那个 一个 的吗 了吗".split()
)
# Weights of each kind of feature.
W_CONCEPT = 2.0
W_WORD = 1.0
W_TRIGRAM = 0.35
W_BIGRAM = 1.0
W_UNIGRAM = 0.4
# An ambiguous question (runner-up within this of the best) loses confidence.
AMBIGUITY_MARGIN = 0.1


def normalize(text: str) -> str:
    """NFKC (full-width letters and digits to ASCII), lower case, spaces collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


def _stem(word: str) -> str:
    """A light English stemmer: plurals and -ing/-ed forms meet their base word."""
    if len(word) <= 3:
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("es") and word[:-2].endswith(("s", "x", "z", "ch", "sh")):
        return word[:-2]
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) > len(suffix) + 2:
            base = word[: -len(suffix)]
            if len(base) > 2 and base[-1] == base[-2] and base[-1] not in "lsz":
                base = base[:-1]  # "stopped" -> "stop"
            return base
    if word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


class Synonyms:
    """Phrases (both languages) that stand for one concept, found by substring."""

    def __init__(self, table: Mapping[str, Sequence[str]]) -> None:
        self._phrases: list[tuple[str, str]] = []
        for concept, phrases in table.items():
            for phrase in phrases:
                text = normalize(phrase)
                if text.isascii():
                    text = _stemmed(text)
                if text.strip():
                    self._phrases.append((text, concept))

    def concepts(self, text: str) -> list[str]:
        """Each concept whose phrase occurs: English phrases as whole (stemmed) words,
        Chinese ones anywhere."""
        found = []
        latin = _stemmed(text)
        for phrase, concept in self._phrases:
            hit = phrase in latin if phrase.startswith(" ") else phrase in text
            if hit and concept not in found:
                found.append(concept)
        return found


def _stemmed(text: str) -> str:
    """The English words of ``text`` stemmed, padded with spaces (" cash out ")."""
    words = [_stem(w) for w in WORD.findall(text)]
    return f" {' '.join(words)} " if words else ""


def features(text: str, synonyms: Synonyms | None = None) -> dict[str, float]:
    """The weighted features of one text."""
    norm = normalize(text)
    out: defaultdict[str, float] = defaultdict(float)
    if synonyms is not None:
        for concept in synonyms.concepts(norm):
            out[f"@{concept}"] += W_CONCEPT
    for run in CJK.findall(norm):
        chars = [c for c in run]
        for i, char in enumerate(chars):
            if char not in STOP_ZH:
                out[f"u:{char}"] += W_UNIGRAM
            if i + 1 < len(chars) and f"{char}{chars[i + 1]}" not in STOP_ZH_PAIRS:
                out[f"b:{char}{chars[i + 1]}"] += W_BIGRAM
    for word in WORD.findall(norm):
        if word in STOP_EN:
            continue
        stem = _stem(word)
        out[f"w:{stem}"] += W_WORD
        padded = f"<{stem}>"
        for i in range(len(padded) - 2):
            out[f"t:{padded[i : i + 3]}"] += W_TRIGRAM
    return dict(out)


@dataclass(frozen=True)
class Document:
    """A text that speaks for an entry. ``scale`` < 1 (an answer's text): weaker evidence,
    kept out of the entry's combined vector."""

    entry_id: str
    text: str
    scale: float = 1.0


@dataclass(frozen=True)
class Match:
    entry_id: str
    score: float
    confidence: float
    runner_up: str
    runner_up_score: float


def _norm(vec: Mapping[str, float]) -> float:
    return math.sqrt(sum(v * v for v in vec.values())) or 1.0


class Matcher:
    """An index over question variants; ``best`` finds the closest entry."""

    def __init__(self, documents: Iterable[Document], synonyms: Synonyms | None = None) -> None:
        self.synonyms = synonyms
        docs = list(documents)
        per_entry: dict[str, defaultdict[str, float]] = {}
        raw: list[tuple[str, dict[str, float], float]] = []
        for doc in docs:
            feats = features(doc.text, synonyms)
            if not feats:
                continue
            raw.append((doc.entry_id, feats, doc.scale))
            if doc.scale < 1.0:
                continue
            whole = per_entry.setdefault(doc.entry_id, defaultdict(float))
            for term, weight in feats.items():
                whole[term] += weight
        df: Counter[str] = Counter()
        for _, feats, _ in raw:
            df.update(set(feats))
        n = max(len(raw), 1)
        self._idf = {term: math.log((1 + n) / (1 + count)) + 1.0 for term, count in df.items()}
        self._default_idf = math.log(1 + n) + 1.0
        self._vectors: list[tuple[str, dict[str, float], float]] = []
        for entry_id, feats, scale in raw:
            self._add(entry_id, feats, scale)
        for entry_id, feats in per_entry.items():
            # The entry as a whole: every variant's words together (scaled down a little).
            self._add(entry_id, feats, scale=0.9)
        self.entries = frozenset(per_entry)

    def _weigh(self, feats: Mapping[str, float]) -> dict[str, float]:
        return {
            term: count * self._idf.get(term, self._default_idf) for term, count in feats.items()
        }

    def _add(self, entry_id: str, feats: Mapping[str, float], scale: float = 1.0) -> None:
        vec = self._weigh(feats)
        self._vectors.append((entry_id, vec, _norm(vec) / scale))

    def scores(self, question: str) -> dict[str, float]:
        """Every entry's score for ``question`` (cosine similarity, 0..1)."""
        feats = features(question, self.synonyms)
        if not feats:
            return {}
        query = self._weigh(feats)
        qn = _norm(query)
        best: dict[str, float] = {}
        for entry_id, vec, vn in self._vectors:
            dot = sum(w * vec[t] for t, w in query.items() if t in vec)
            if dot:
                score = min(dot / (qn * vn), 1.0)
                if score > best.get(entry_id, 0.0):
                    best[entry_id] = score
        return best

    def best(self, question: str) -> Match | None:
        ranked = sorted(self.scores(question).items(), key=lambda kv: -kv[1])
        if not ranked:
            return None
        entry_id, score = ranked[0]
        runner, runner_score = ranked[1] if len(ranked) > 1 else ("", 0.0)
        confidence = score
        if runner and score - runner_score < AMBIGUITY_MARGIN:
            confidence = score * (0.5 + 0.5 * (score - runner_score) / AMBIGUITY_MARGIN)
        return Match(entry_id, score, round(confidence, 4), runner, runner_score)
