"""Intent classifier and entity extraction: deterministic, typo-tolerant, stdlib only."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import NamedTuple

from chat.knowledge import KB, KnowledgeBase, KnowledgeError

PLACEHOLDER_RE = re.compile(r"\[[A-Z][A-Z_]*\]")
APOSTROPHE_RE = re.compile("['`\u2019\u00b4]")
THOUSANDS_RE = re.compile(r"(?<=\d)[,.](?=\d{3}\b)")
LETTER_DIGIT_RE = re.compile(r"(?<=[a-z])(?=\d)|(?<=\d)(?=[a-z])")
NON_WORD_RE = re.compile(r"[^a-z0-9]+")
REPEAT_RE = re.compile(r"([a-z])\1+")
VERSION_RE = re.compile(r"\bandroid (?:(?:version|os|v|ver|is|on) )*(\d{1,2})\b")
MAX_TOKENS = 80
JOINS = sorted(
    (
        (len(p), tuple(p), w)
        for p, w in ((k.split(), v) for k, v in KB.lexicon.join.items())
    ),
    reverse=True,
)
CACHE_LIMIT = 50_000
NUMBER_ATOM = "@number"
DEFAULT_EXPAND = dict(KB.lexicon.expand)
# text -> its tokens under DEFAULT_EXPAND, while one_turn() lasts.
_MEMO: ContextVar[dict[str, tuple[str, ...]] | None] = ContextVar(
    "intents_memo", default=None
)


class Classification(NamedTuple):
    intent: str
    confidence: float


@dataclass(frozen=True)
class Entities:
    platform: str | None = None
    brand: str | None = None
    source: str | None = None
    android_version: int | None = None
    period: str | None = None


def _tokens(text: str) -> list[str]:
    text = unicodedata.normalize("NFKC", text)
    text = PLACEHOLDER_RE.sub(" ", text).lower()
    text = THOUSANDS_RE.sub("", APOSTROPHE_RE.sub("", text))
    text = LETTER_DIGIT_RE.sub(" ", text)
    return [REPEAT_RE.sub(r"\1", t) for t in NON_WORD_RE.split(text) if t]


def _join(tokens: list[str]) -> list[str]:
    out: list[str] = []
    for token in tokens:
        out.append(token)
        for size, phrase, word in JOINS:
            if tuple(out[-size:]) == phrase:
                out[-size:] = [word]
                break
    return out


@contextmanager
def one_turn() -> Iterator[None]:
    """Within the block each text is normalised once, however many checks read it
    (a rules answer asks ~7 times). The memo ends with the block, so no message
    text outlives the turn that read it."""
    token = _MEMO.set({})
    try:
        yield
    finally:
        _MEMO.reset(token)


def normalise(text: str, expand: dict[str, str] | None = None) -> tuple[str, ...]:
    """Lowercase, strip punctuation and placeholders, collapse repeated letters."""
    table = DEFAULT_EXPAND if expand is None else expand
    memo = _MEMO.get()
    if memo is None or table is not DEFAULT_EXPAND:
        return _normalise(text, table)
    found = memo.get(text)
    if found is None:
        found = memo[text] = _normalise(text, table)
    return found


def _normalise(text: str, table: dict[str, str]) -> tuple[str, ...]:
    out: list[str] = []
    for token in _tokens(text)[:MAX_TOKENS]:
        out.extend(_tokens(table[token]) if token in table else (token,))
    return tuple(_join(out))


def _inflections(word: str) -> set[str]:
    forms = {word}
    if len(word) >= 3 and not word.isdigit():
        stem = word[:-1] if word.endswith("e") else word
        forms |= {word + "s", word + "es", word + "d", stem + "ed", stem + "ing"}
        if word.endswith("y"):
            forms |= {word[:-1] + "ies", word[:-1] + "ied"}
    return {REPEAT_RE.sub(r"\1", f) for f in forms}


def _deletes(word: str, depth: int) -> set[str]:
    found, frontier = {word}, {word}
    for _ in range(depth):
        frontier = {w[:i] + w[i + 1 :] for w in frontier for i in range(len(w))}
        found |= frontier
    return found


def _distance(a: str, b: str) -> int:
    """Optimal string alignment distance (edits, with adjacent transpositions)."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        row = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                row[j] = min(row[j], prev2[j - 2] + 1)
        prev2, prev = prev, row
    return prev[-1]


def _max_edits(word: str) -> int:
    return 0 if len(word) < 4 else 1 if len(word) < 9 else 2


class Matcher:
    """Maps message tokens to the atoms (words, @classes) of the knowledge base."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb
        # The project's KB shares its table with normalise()'s default (one memo key).
        self.expand = DEFAULT_EXPAND if kb is KB else dict(kb.lexicon.expand)
        self.atoms: dict[str, set[str]] = {}
        self.canonical: dict[str, str] = {}
        for name, members in kb.lexicon.classes.items():
            for member in members:
                self._add(self._word(member, f"@{name}"), f"@{name}")
        for intent in kb.intents.values():
            for pattern, _ in intent.patterns:
                for alt in pattern.replace("|", " ").split():
                    if not alt.startswith("@"):
                        self._add(self._word(alt, alt), f"w:{self._word(alt, alt)}")
        for phrase in self._entity_phrases():
            for word in phrase:
                self._add(word, f"w:{word}")
        self.known = {self._word(w, w) for w in kb.lexicon.known_words}
        self.known |= set(self.atoms)
        self.index: dict[str, set[str]] = {}
        for surface in self.atoms:
            if len(surface) >= 4:
                for variant in _deletes(surface, _max_edits(surface)):
                    self.index.setdefault(variant, set()).add(surface)
        self.cache: dict[str, tuple[frozenset[str], str | None]] = {}

    def _word(self, word: str, where: str) -> str:
        tokens = normalise(word, self.expand)
        if len(tokens) != 1:
            raise KnowledgeError(f"knowledge word {word!r} in {where} is not one word")
        return tokens[0]

    def _add(self, word: str, atom: str) -> None:
        for surface in _inflections(word):
            self.atoms.setdefault(surface, set()).add(atom)
            if surface == word or surface not in self.canonical:
                self.canonical[surface] = word

    def _entity_phrases(self) -> Iterable[tuple[str, ...]]:
        lex = self.kb.lexicon
        groups = [*lex.platform.values(), *lex.sources.values(), *lex.period.values()]
        groups += [b.words for b in lex.brands.values()] + [lex.phone_when_asked]
        for group in groups:
            for phrase in group:
                yield normalise(phrase, self.expand)

    def lookup(self, token: str) -> tuple[frozenset[str], str | None]:
        """Atoms and canonical word for a token, tolerating small typos."""
        hit = self.cache.get(token)
        if hit is None:
            hit = self._resolve(token)
            if len(self.cache) >= CACHE_LIMIT:
                self.cache.clear()
            self.cache[token] = hit
        return hit

    def _resolve(self, token: str) -> tuple[frozenset[str], str | None]:
        if token.isdigit():
            return frozenset({NUMBER_ATOM, f"w:{token}"}), token
        if token in self.known:
            return frozenset(self.atoms.get(token, ())), self.canonical.get(token)
        edits = _max_edits(token)
        if not edits:
            return frozenset(), None
        candidates = set()
        for variant in _deletes(token, edits):
            candidates |= self.index.get(variant, set())
        scored = sorted(
            (_distance(token, c), abs(len(c) - len(token)), c) for c in candidates
        )
        for dist, _, surface in scored:
            limit = min(edits, _max_edits(surface))
            if dist <= limit and (len(token) > 4 or sorted(token) == sorted(surface)):
                return frozenset(self.atoms[surface]), self.canonical[surface]
        return frozenset(), None


class Classifier:
    """Weighted pattern scoring over matched atoms; highest score wins."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb
        self.matcher = Matcher(kb)
        self.patterns = [
            (intent.name, self._compile(pattern), weight)
            for intent in kb.intents.values()
            for pattern, weight in intent.patterns
        ]
        self.priority = {i.name: i.priority for i in kb.intents.values()}
        # Patterns by the atoms of their first position: a pattern can only match
        # when its first position meets the message, so scores() checks those.
        self.by_first_atom: dict[str, list[int]] = {}
        for number, (_, positions, _) in enumerate(self.patterns):
            for atom in positions[0] if positions else ():
                self.by_first_atom.setdefault(atom, []).append(number)

    def _compile(self, pattern: str) -> tuple[frozenset[str], ...]:
        positions = []
        for atom in pattern.split():
            keys = set()
            for alt in atom.split("|"):
                keys.add(
                    alt
                    if alt.startswith("@")
                    else f"w:{self.matcher._word(alt, pattern)}"
                )
            positions.append(frozenset(keys))
        return tuple(positions)

    def atoms(self, text: str) -> list[frozenset[str]]:
        return [self.matcher.lookup(t)[0] for t in normalise(text, self.matcher.expand)]

    def scores(self, text: str) -> dict[str, float]:
        atoms = self.atoms(text)
        present = frozenset().union(*atoms) if atoms else frozenset()
        candidates = {n for atom in present for n in self.by_first_atom.get(atom, ())}
        totals: dict[str, float] = {}
        for number in sorted(candidates):  # pattern order: the sums add up alike
            intent, positions, weight = self.patterns[number]
            if all(p & present for p in positions) and self._matches(atoms, positions):
                totals[intent] = totals.get(intent, 0.0) + weight
        return totals

    def _matches(self, atoms: list[frozenset[str]], positions: tuple) -> bool:
        gap = self.kb.max_gap
        frontier = [i for i, a in enumerate(atoms) if a & positions[0]]
        for position in positions[1:]:
            nxt = {
                j
                for i in frontier
                for j in range(i + 1, min(i + 2 + gap, len(atoms)))
                if atoms[j] & position
            }
            frontier = sorted(nxt)
            if not frontier:
                return False
        return bool(frontier)

    def classify(self, text: str) -> Classification:
        ranked = self.ranked(text)
        best, best_score = ranked[0] if ranked else ("unclear", 0.0)
        if best_score < self.kb.min_score:
            return Classification("unclear", 0.0)
        second = ranked[1][1] if len(ranked) > 1 else 0.0
        margin = (best_score - max(second, 0.0)) / best_score
        confidence = min(1.0, best_score / 2.0) * (0.5 + 0.5 * margin)
        return Classification(best, round(confidence, 3))

    def ranked(self, text: str) -> list[tuple[str, float]]:
        """Intents with a positive score, best first (ties go to the higher priority)."""
        totals = self.scores(text)
        order = sorted(totals.items(), key=lambda kv: (-kv[1], -self.priority[kv[0]]))
        return [(name, score) for name, score in order if score > 0]


CLASSIFIER = Classifier(KB)


def classify(text: str) -> Classification:
    """Return (intent, confidence in 0..1); "unclear" when nothing scores enough."""
    return CLASSIFIER.classify(text)


def best_guess(text: str) -> str:
    """The highest-scoring problem or meta intent, even below the threshold."""
    ranked = CLASSIFIER.ranked(text)
    return ranked[0][0] if ranked else "unclear"


def has_class(text: str, name: str) -> bool:
    """True when a word of the lexicon class `name` occurs in text."""
    return any(f"@{name}" in atoms for atoms in CLASSIFIER.atoms(text))


def _canonical(text: str) -> tuple[str, ...]:
    words = []
    for token in normalise(text, CLASSIFIER.matcher.expand):
        words.append(CLASSIFIER.matcher.lookup(token)[1] or token)
    return tuple(words)


PhraseIndex = dict[str, list[tuple[tuple[str, ...], str]]]


def _phrase_index(groups: dict[str, tuple[str, ...]]) -> PhraseIndex:
    """Phrases by their first word, longest first (so a lookup per word suffices)."""
    pairs = [
        (normalise(phrase, CLASSIFIER.matcher.expand), name)
        for name, phrases in groups.items()
        for phrase in phrases
    ]
    index: PhraseIndex = {}
    for phrase, name in sorted(pairs, key=lambda pair: -len(pair[0])):
        if not phrase:
            raise KnowledgeError(f"an entity phrase of {name!r} has no words")
        index.setdefault(phrase[0], []).append((phrase, name))
    return index


def _first_match(words: tuple[str, ...], index: PhraseIndex) -> tuple[str, int] | None:
    """The earliest (then longest) phrase found in words, with the index after it."""
    for start, word in enumerate(words):
        for phrase, name in index.get(word, ()):
            if words[start : start + len(phrase)] == phrase:
                return name, start + len(phrase)
    return None


def _find_brand(words: tuple[str, ...]) -> str | None:
    for start, word in enumerate(words):
        for phrase, name in BRAND_INDEX.get(word, ()):
            end = start + len(phrase)
            following = words[end] if end < len(words) else ""
            blocked = following in KB.lexicon.brands[name].not_before
            if words[start:end] == phrase and not blocked:
                return name
    return None


def _android_version(words: tuple[str, ...]) -> int | None:
    found = VERSION_RE.search(" ".join(words))
    version = int(found.group(1)) if found else None
    return version if version is not None and 1 <= version <= 30 else None


def extract(text: str, *, asked_source: bool = False) -> Entities:
    """Platform, phone brand, step source, Android version and period named in text."""
    words = _canonical(text)
    platform = _first_match(words, PLATFORM_INDEX)
    source = _first_match(words, SOURCE_INDEX)
    if source is None and asked_source:
        source = _first_match(words, PHONE_INDEX)
    period = _first_match(words, PERIOD_INDEX)
    return Entities(
        platform=platform[0] if platform else None,
        brand=_find_brand(words),
        source=source[0] if source else None,
        android_version=_android_version(words),
        period=period[0] if period else None,
    )


def is_frustrated_tone(text: str) -> bool:
    """Shouting: repeated exclamation marks or a message mostly in capitals."""
    letters = [c for c in PLACEHOLDER_RE.sub("", text) if c.isalpha()]
    shouting = len(letters) >= 8 and sum(c.isupper() for c in letters) >= 0.7 * len(
        letters
    )
    return "!!" in text.replace(" ", "") or shouting


def yes_or_no(text: str) -> bool | None:
    """A short yes / no answer, or None when the text is not one."""
    if len(normalise(text)) > 5:
        return None
    if has_class(text, "no"):
        return False
    return True if has_class(text, "yes") else None


def wants_human(text: str) -> bool:
    """The user asks to reach a person."""
    return has_class(text, "human") and has_class(text, "reach")


PLATFORM_INDEX = _phrase_index(dict(KB.lexicon.platform))
SOURCE_INDEX = _phrase_index(dict(KB.lexicon.sources))
PHONE_INDEX = _phrase_index({"phone": KB.lexicon.phone_when_asked})
PERIOD_INDEX = _phrase_index(dict(KB.lexicon.period))
BRAND_INDEX = _phrase_index({k: v.words for k, v in KB.lexicon.brands.items()})
