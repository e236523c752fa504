"""Detector for personal names: context cues plus first-name and surname lists."""

import re
import unicodedata

from chat.phi_words import (
    AMBIGUOUS_NAMES,
    FIRST_NAMES,
    FIRST_NAMES_CORE,
    NOT_NAMES,
    PLACE_NOUNS,
    PLACE_PREFIXES,
    SURNAMES,
    SURNAMES_CORE,
)

Candidate = tuple[int, int, str]

_I = re.IGNORECASE
# Letters glued to digits ("S24", "A54", "X5") are model codes, never name words.
# (The look-behind sits after the first letter so that `re` skips to letters.)
WORD = re.compile(
    r"(?>[^\W\d_](?<!\d[^\W\d_])[^\W\d_]*(?:['\u2019\-][^\W\d_]+)*)(?!\d)\.?"
)
_RELATIONS = frozenset(
    "wife husband son daughter mom mum mother dad father brother sister friend "
    "partner grandma grandmother grandpa grandfather granddaughter grandson aunt "
    "uncle cousin niece nephew boss coach trainer doctor physician neighbour "
    "neighbor patient client kid child roommate colleague coworker caregiver nurse "
    "therapist physiotherapist physio girlfriend boyfriend fiance fiancee spouse "
    "stepson stepdaughter teammate manager dietitian cardiologist pcp twin twins "
    "boys girls kids children sons daughters grandchildren grandkids parents "
    "mother-in-law father-in-law sister-in-law brother-in-law".split()
)
_TITLES = frozenset(
    "dr doctor mr mrs ms miss mx prof professor nurse sister father".split()
)
# Labels that introduce a name when followed by ":" or "." ("From: ", "Attn. ").
_LABELS = frozenset(
    "name names from to cc attn requester customer member holder contact patient "
    "signed details client recipient sender owner guardian resident applicant "
    "insured subscriber beneficiary caregiver parent student employee".split()
)
# Words directly before a capitalised word that make it a name ("ask Maria").
_CAP_CUES = frozenset(
    "customer requester patient member holder user ask let tell thanks thank name "
    "signed named soy llamo bin m'appelle".split()
)
# Words directly before a listed name that make it one ("I'm Wei", "Hi Tomasz").
_WEAK_CUES = frozenset(
    "i'm im hi hello hey dear thanks regards cheers best sincerely xoxo and it's".split()
)
# A capitalised run followed by one of these reads as a person signing in.
_TRAILER = re.compile(r"\s+here\b|\s*\(\s*[\w.+\-]+@|\s*[,:]\s*(?:ssn|dob|mrn)\b", _I)
_FAMILY = re.compile(r"\bthe\s+(?P<v>(?-i:[A-Z][\w'\-]+))\s+family\b", _I)
_PARTICLES = frozenset(
    (
        "de",
        "del",
        "della",
        "di",
        "da",
        "dos",
        "das",
        "do",
        "du",
        "van",
        "von",
        "der",
        "den",
        "la",
        "le",
        "bin",
        "bint",
        "ibn",
        "abu",
        "al",
        "el",
        "ter",
    )
)
_SUFFIXES = frozenset(("jr", "sr", "ii", "iii", "iv"))
_INITIAL = re.compile(r"[A-Z]\.?")
_MAX_WORDS = 5


def _is_cap(word: str) -> bool:
    return word[0].isupper() and not (len(word) > 2 and word.isupper())


def _key(word: str) -> str:
    key = word.lower()
    if key[-1] == ".":
        key = key[:-1]
    if key.endswith(("'s", "\u2019s")):
        key = key[:-2]
    if not key.isascii() and key not in FIRST_NAMES and key not in SURNAMES:
        folded = unicodedata.normalize("NFKD", key)
        key = "".join(c for c in folded if not unicodedata.combining(c))
    return key


def _listed(key: str) -> bool:
    return key in FIRST_NAMES or key in SURNAMES or key in AMBIGUOUS_NAMES


_LISTED = FIRST_NAMES | SURNAMES | AMBIGUOUS_NAMES
# A lowercase word that is not listed starts a name only before one of these.
_CORE_AFTER = (SURNAMES_CORE | FIRST_NAMES_CORE) - NOT_NAMES


class _Text:
    """One message's words, their lookup keys and capitalisation."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.words = list(WORD.finditer(text))
        groups = [w.group() for w in self.words]
        self.lowers = [g.lower() for g in groups]
        # Plain ASCII letters (most words) are their own key; skip _key's work.
        self.keys = [
            low if low.isalpha() and low.isascii() else _key(word)
            for word, low in zip(groups, self.lowers, strict=True)
        ]
        self.caps = [
            word[0].isupper() and not (len(word) > 2 and word.isupper())
            for word in groups
        ]
        self.seen_surnames: set[str] = set()

    def gap(self, i: int) -> str:
        """The text between word i-1 and word i (the start of text for i=0)."""
        left = self.words[i - 1].end() if i else 0
        return self.text[left : self.words[i].start()]

    def close(self, i: int) -> bool:
        """True when word i+1 follows word i with one space or a hyphen."""
        if i + 1 >= len(self.words):
            return False
        gap = self.text[self.words[i].end() : self.words[i + 1].start()]
        return gap == " " or gap == "-"

    def strong(self, i: int) -> bool:
        """After "my name is", "Dr.", "my daughter", "From:" and the like."""
        if not i:
            return False
        gap, prev = self.gap(i), self.lowers[i - 1].rstrip(".")
        before = self.lowers[i - 2] if i > 1 else ""
        if "\n" in gap:
            return False
        if prev in _TITLES and gap.strip() in ("", "."):
            return True
        if (":" in gap or "." in gap) and prev in _LABELS:
            return True
        if prev in _RELATIONS and gap.strip() in ("", ","):
            return before in ("my", "our", "his", "her")
        if prev in ("is", "was") or prev == "name's":
            window = self.keys[max(0, i - 7) : i - 1]
            return "name" in window or prev == "name's"
        if gap.strip():
            return False
        if prev in _CAP_CUES or (before, prev) in _PAIR_CUES:
            return self.caps[i]
        return prev in ("named", "signed") or (before, prev) in _PAIR_CUES

    def weak(self, i: int) -> int:
        """_SPOKEN after "I'm", "this is", "Hi", "Thanks -"; _LAYOUT at the start
        of the text or a line, or after a colon; 0 otherwise."""
        if not i:
            return _LAYOUT
        gap = self.gap(i)
        if "\n" in gap or ":" in gap or "|" in gap:
            return _LAYOUT
        if gap.strip() in ("-", "\u2013", "\u2014", "~"):
            return _SPOKEN
        if gap.strip(" ,"):
            return 0
        prev = self.lowers[i - 1]
        before = self.lowers[i - 2] if i > 1 else ""
        return _SPOKEN if prev in _WEAK_CUES or (before, prev) in _WEAK_PAIRS else 0


_PAIR_CUES = frozenset(
    (
        ("me", "llamo"),
        ("ich", "bin"),
        ("nombre", "es"),
        ("behalf", "of"),
        ("reply", "to"),
        ("forward", "to"),
        ("account", "of"),
        ("thank", "you"),
        ("signed", "by"),
        ("je", "suis"),
    )
)
_SPOKEN, _LAYOUT = 2, 1
_WEAK_PAIRS = frozenset((("this", "is"), ("it", "is"), ("i", "am"), ("thank", "you")))


def _starts_name(t: _Text, i: int) -> bool:
    key = t.keys[i]
    if not key or key in NOT_NAMES:
        return False
    if not t.caps[i]:
        return _starts_lowercase(t, i, key)
    if _INITIAL.fullmatch(t.words[i].group()):
        return _initials_then_surname(t, i) or t.strong(i)
    if key in FIRST_NAMES or key.split("-")[0] in FIRST_NAMES:
        return True
    pair = t.close(i) and t.caps[i + 1] and t.keys[i + 1] not in NOT_NAMES
    surname_next = pair and t.keys[i + 1] in SURNAMES
    if key in AMBIGUOUS_NAMES:
        return surname_next or t.strong(i)
    if t.strong(i):
        return True
    if pair and (
        _TRAILER.match(t.text, t.words[i + 1].end())
        or (t.keys[i + 1] in t.seen_surnames)
    ):
        return True
    cue = t.weak(i)
    if cue == _SPOKEN:
        return key in SURNAMES or surname_next or (pair and _ends_run(t, i + 1))
    return cue == _LAYOUT and surname_next


def _ends_run(t: _Text, i: int) -> bool:
    """Word i ends the clause: punctuation or the end of the text follows."""
    end = t.words[i].end()
    return end == len(t.text) or t.text[end] in ",.!?;:)"


def _starts_lowercase(t: _Text, i: int, key: str) -> bool:
    if not _listed(key):
        # Shortcut of the general rule below for an unlisted word (most words):
        # only a cue plus a listed lowercase name after it makes it a name.
        nxt = t.keys[i + 1] if t.close(i) and not t.caps[i + 1] else ""
        if nxt in NOT_NAMES or not (nxt in SURNAMES_CORE or nxt in FIRST_NAMES_CORE):
            return False
        return t.strong(i)
    strong = t.strong(i)
    cued = strong or t.weak(i) == _SPOKEN
    nxt = t.keys[i + 1] if t.close(i) and not t.caps[i + 1] else ""
    if nxt in NOT_NAMES:
        nxt = ""
    if nxt and (nxt in SURNAMES_CORE or (cued and nxt in FIRST_NAMES_CORE)):
        return key in FIRST_NAMES_CORE or (cued and _listed(key)) or strong
    if strong:
        return key in FIRST_NAMES_CORE or key in AMBIGUOUS_NAMES
    return cued and key in FIRST_NAMES_CORE and _lowercase_ok(t, i)


def _lowercase_ok(t: _Text, i: int) -> bool:
    """A lone lowercase first name after "it's"/"i'm": the next word is no verb."""
    return i + 1 >= len(t.words) or t.keys[i + 1] in NOT_NAMES or not t.close(i)


def _initials_then_surname(t: _Text, i: int) -> bool:
    j = i
    while j < len(t.words) and _INITIAL.fullmatch(t.words[j].group()):
        j += 1
    return j < len(t.words) and j - i <= 3 and t.keys[j] in SURNAMES


def _extend(t: _Text, i: int) -> int:
    """Return the index of the last word of the name that starts at word i."""
    last = i
    lowercase = not t.caps[i]
    j = i + 1
    while j < len(t.words) and j - i < _MAX_WORDS + 1 and t.close(j - 1):
        word = t.words[j].group()
        key = t.keys[j]
        if key in _SUFFIXES and word[0].isupper():
            return j
        if not lowercase and word[-1] == "." and _INITIAL.fullmatch(word):
            j += 1
            continue
        if key in NOT_NAMES or key in PLACE_NOUNS:
            break
        if lowercase:
            if t.caps[j] or not (key in FIRST_NAMES_CORE or key in SURNAMES_CORE):
                break
        elif key in _PARTICLES and j + 1 < len(t.words) and t.caps[j + 1]:
            j += 1
            continue
        elif not (t.caps[j] or _INITIAL.fullmatch(word)):
            break
        last = j
        if word.endswith(("'s", "\u2019s")):
            break
        j += 1
    return last


def _is_place(t: _Text, first: int, last: int) -> bool:
    """ "Lake Mayra", "St. Luke's", "Arthur's Seat", "Victoria Island"."""
    if (
        first
        and t.close(first - 1)
        and t.caps[first - 1]
        and t.keys[first - 1] in PLACE_PREFIXES
    ):
        return True
    if first and t.keys[first - 1] in ("st", "saint", "mt", "mount"):
        return t.text[t.words[first - 1].end() : t.words[first].start()] == " "
    nxt = last + 1
    return (
        nxt < len(t.words)
        and t.close(last)
        and t.caps[nxt]
        and (t.keys[nxt] in PLACE_NOUNS)
    )


def _span(t: _Text, first: int, last: int) -> tuple[int, int]:
    start, end = t.words[first].start(), t.words[last].end()
    tail = t.words[last].group()
    if (
        tail.endswith(".")
        and not _INITIAL.fullmatch(tail)
        and t.keys[last] not in (_SUFFIXES)
    ):
        end -= 1
    if tail.endswith(("'s", "\u2019s")):
        end -= 2
    return start, end


def detect(text: str) -> list[Candidate]:
    """Return NAME candidates found in normalised text."""
    t = _Text(text)
    found: list[Candidate] = []
    keys, caps, count = t.keys, t.caps, len(t.words)
    i = 0
    while i < count:
        key = keys[i]
        if (
            not key
            or key in NOT_NAMES
            or (
                not caps[i]
                and key not in _LISTED
                and (i + 1 == count or keys[i + 1] not in _CORE_AFTER)
            )
        ):
            # What _starts_name says of these words (most words), without a call.
            i += 1
        elif _starts_name(t, i):
            last = _extend(t, i)
            if not _is_place(t, i, last):
                found.append((*_span(t, i, last), "NAME"))
                if last > i:
                    t.seen_surnames.add(t.keys[last])
            i = last + 1
        else:
            i += 1
    if "family" in text or "Family" in text:
        found.extend(
            (m.start("v"), m.end("v"), "NAME")
            for m in _FAMILY.finditer(text)
            if _key(m.group("v")) not in NOT_NAMES
        )
    return found
