"""Detector for personal names: context cues plus first-name and surname lists."""

import re

from chat.phi_words import AMBIGUOUS_NAMES, FIRST_NAMES, NOT_NAMES, SURNAMES

Candidate = tuple[int, int, str]

_I = re.IGNORECASE
WORD = re.compile(r"[^\W\d_]+(?:['\u2019\-][^\W\d_]+)*\.?")
_RELATIONS = (
    r"wife|husband|son|daughter|mom|mum|mother|dad|father|brother|sister|friend|"
    r"partner|grandma|grandmother|grandpa|grandfather|granddaughter|grandson|aunt|"
    r"uncle|cousin|niece|nephew|boss|coach|trainer|doctor|physician|neighbou?r|"
    r"patient|client|kid|child|roommate|colleague|coworker|caregiver|nurse|"
    r"therapist|girlfriend|boyfriend|fiancee?|spouse|stepson|stepdaughter|"
    r"teammate|manager|dietitian|cardiologist|pcp"
)
# Cues after which any capitalised, non-product word is taken as a name.
STRONG_CUE = re.compile(
    r"(?:\bmy\s+(?:full\s+|first\s+|legal\s+)?name\s+is|\bmy\s+name'?s|"
    r"\bnames?\s*:|\bcall\s+me|\bsigned|\bpatient\s*(?:name)?\s*:|\bfrom\s*:|"
    r"\b(?:dr|doctor|mr|mrs|ms|miss|mx|prof|professor|nurse|sister|father)\.?|"
    rf"\bmy\s+(?:{_RELATIONS})(?:'s\s+name\s+is|\s+is\s+called|\s+named|,)?|"
    r"\bname\s+(?:is|was)|\bnamed)\s*$",
    _I,
)
# Cues after which only listed first names or surnames count.
WEAK_CUE = re.compile(
    r"(?:\bi'?m|\bi\s+am|\bthis\s+is|\bit'?s|\bit\s+is|\bhi|\bhello|\bhey|\bdear|"
    r"\bthanks?,?|\bthank\s+you,?|\bregards,?|\bcheers,?|\bbest,?|\bsincerely,?|"
    r"\bxoxo,?|\bcheers,?|(?:^|\n)\s*[-\u2013\u2014~])\s*$",
    _I,
)
_PARTICLES = frozenset(
    ("de", "del", "della", "di", "da", "van", "von", "der", "den", "la", "le", "bin")
)
_INITIAL = re.compile(r"[A-Z]\.?")


def _is_cap(word: str) -> bool:
    return word[0].isupper() and not (len(word) > 2 and word.isupper())


def _key(word: str) -> str:
    word = word.rstrip(".")
    for tail in ("'s", "\u2019s"):
        if word.lower().endswith(tail):
            word = word[: -len(tail)]
    return word.lower()


def _listed(word: str) -> bool:
    key = _key(word)
    return key in FIRST_NAMES or key in SURNAMES or key in AMBIGUOUS_NAMES


def _cue(pattern: re.Pattern[str], text: str, start: int) -> bool:
    return pattern.search(text, max(0, start - 40), start) is not None


def _starts_name(words: list[re.Match[str]], i: int, text: str) -> bool:
    word = words[i].group()
    key = _key(word)
    start = words[i].start()
    following = words[i + 1].group() if i + 1 < len(words) else ""
    follows_close = bool(following) and _gap(text, words[i], words[i + 1])
    if not _is_cap(word):
        if not _listed(word) or key in NOT_NAMES:
            return False
        if (
            key in FIRST_NAMES
            and follows_close
            and not _is_cap(following)
            and _key(following) in SURNAMES
        ):
            return True
        return _cue(STRONG_CUE, text, start)
    if key in FIRST_NAMES or key.split("-")[0] in FIRST_NAMES:
        return True
    surname_next = follows_close and _is_cap(following) and _key(following) in SURNAMES
    if key in AMBIGUOUS_NAMES:
        return surname_next or _cue(STRONG_CUE, text, start)
    if key in NOT_NAMES or not key:
        return False
    if _cue(STRONG_CUE, text, start):
        return True
    return (key in SURNAMES or surname_next) and _cue(WEAK_CUE, text, start)


def _gap(text: str, left: re.Match[str], right: re.Match[str]) -> bool:
    return (
        text[left.end() : right.start()] in (" ", "-")
        and "\n" not in text[left.end() : right.start()]
    )


def _extend(words: list[re.Match[str]], i: int, text: str) -> int:
    """Return the index of the last word of the name that starts at word i."""
    last = i
    lowercase = not _is_cap(words[i].group())
    j = i + 1
    while j < len(words) and j - i <= 3 and _gap(text, words[j - 1], words[j]):
        word = words[j].group()
        key = _key(word)
        if key in NOT_NAMES:
            break
        if lowercase:
            if _is_cap(word) or key not in SURNAMES:
                break
        elif key in _PARTICLES and j + 1 < len(words):
            j += 1
            continue
        elif not (_is_cap(word) or _INITIAL.fullmatch(word)):
            break
        last = j
        if word.endswith("'s") or word.endswith("\u2019s"):
            break
        j += 1
    return last


def _span(words: list[re.Match[str]], first: int, last: int) -> tuple[int, int]:
    start, end = words[first].start(), words[last].end()
    tail = words[last].group()
    if tail.endswith(".") and not _INITIAL.fullmatch(tail):
        end -= 1
    for possessive in ("'s", "\u2019s"):
        if tail.endswith(possessive):
            end -= 2
    return start, end


def detect(text: str) -> list[Candidate]:
    """Return NAME candidates found in normalised text."""
    words = list(WORD.finditer(text))
    found: list[Candidate] = []
    i = 0
    while i < len(words):
        if _starts_name(words, i, text):
            last = _extend(words, i, text)
            start, end = _span(words, i, last)
            found.append((start, end, "NAME"))
            i = last + 1
        else:
            i += 1
    return found
