"""Detector for full calendar dates and birth dates (relative dates are kept)."""

import re
from collections.abc import Iterator

Candidate = tuple[int, int, str]

_I = re.IGNORECASE
_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|"
    r"aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_DAY = r"(?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th)?"
_YEAR = r"(?:1[89]\d\d|20\d\d)"
NUMERIC = re.compile(
    r"(?<![\w./\-])(?P<a>\d{1,2})(?P<s>[/\-.])(?P<b>\d{1,2})(?P=s)"
    r"(?P<y>\d{4}|\d{2})(?![\w\-/]|\.\d)"
)
ISO = re.compile(
    r"(?<![\w./\-])" + _YEAR + r"(?P<s>[/\-.])(?:0?[1-9]|1[0-2])(?P=s)"
    r"(?:0?[1-9]|[12]\d|3[01])(?![\w\-/]|\.\d)"
)
WORDY = re.compile(
    rf"\b(?:{_MONTH}\s+{_DAY},?\s+(?:of\s+)?{_YEAR}|\d{{1,2}}-{_MONTH}-(?:{_YEAR}|\d\d)|"
    rf"{_DAY}\s+(?:of\s+)?{_MONTH},?\s+{_YEAR})\b",
    _I,
)
_BIRTH = r"(?:dob|d\.o\.b\.?|date\s+of\s+birth|birth\s*date|born(?:\s+on)?|birthday)"
BIRTH_PARTIAL = re.compile(
    rf"\b{_BIRTH}\s*(?:is|was|:)?\s*:?\s*(?P<v>{_MONTH}\s+{_DAY}\b|{_DAY}\s+"
    rf"(?:of\s+)?{_MONTH}|\d{{1,2}}[/\-.]\d{{1,2}}(?![/\-.]?\d)|\d{{8}}\b)",
    _I,
)
_DIGIT = re.compile(r"\d")
_YEAR_LIKE = re.compile(r"(?:1[89]|20)\d\d")
_MONTH_STEMS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct")
_MONTH_STEMS += ("nov", "dec")
_VERSION_BEFORE = re.compile(r"(?:\bv|version|ios|android|firmware|build|os)\s*$", _I)


def _valid_numeric(match: re.Match[str]) -> bool:
    first, second = int(match.group("a")), int(match.group("b"))
    year = match.group("y")
    if match.group("s") == "." and len(year) != 4:
        return False
    if len(year) == 4 and not 1800 <= int(year) <= 2099:
        return False
    us_ok = 1 <= first <= 12 and 1 <= second <= 31
    eu_ok = 1 <= second <= 12 and 1 <= first <= 31
    return us_ok or eu_ok


def detect(text: str) -> list[Candidate]:
    """Return DATE candidates: full dates with a year, or birth dates of any shape."""
    found: list[Candidate] = []
    if not _DIGIT.search(text):
        return found
    lower = text.lower()
    for match in NUMERIC.finditer(text):
        before = text[max(0, match.start() - 12) : match.start()]
        if _valid_numeric(match) and not _VERSION_BEFORE.search(before):
            found.append((match.start(), match.end(), "DATE"))
    found.extend(_spans(ISO.finditer(text)))
    if _YEAR_LIKE.search(text) and any(m in lower for m in _MONTH_STEMS):
        found.extend(_spans(WORDY.finditer(text)))
    if any(word in lower for word in ("dob", "d.o.b", "birth", "born")):
        found.extend(
            (m.start("v"), m.end("v"), "DATE") for m in BIRTH_PARTIAL.finditer(text)
        )
    return found


def _spans(matches: Iterator[re.Match[str]]) -> Iterator[Candidate]:
    for match in matches:
        yield match.start(), match.end(), "DATE"
