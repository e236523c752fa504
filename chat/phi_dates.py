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
# The look-behinds come after the first digit, so that `re` skips to digits.
NUMERIC = re.compile(
    r"(?P<a>\d(?<![\w./\-]\d)\d?)(?P<s>[/\-.])(?P<b>\d{1,2})(?P=s)"
    r"(?P<y>\d{4}|\d{2})(?![\w\-/]|\.\d)"
)
ISO = re.compile(
    r"(?:1(?<![\w./\-]1)[89]\d\d|2(?<![\w./\-]2)0\d\d)(?P<s>[/\-.])(?:0?[1-9]|1[0-2])(?P=s)"
    r"(?:0?[1-9]|[12]\d|3[01])(?![\w\-/]|\.\d)"
)
# Dates with a month name: "March 3, 1962", "03-Mar-62", "3rd of March 1962". Both
# shapes are tried only at month words (MONTH_KEYS): the month-first one there, the
# day-first one at a day number just before (DAY_REACH characters at most).
WORDY_MONTH_FIRST = re.compile(
    rf"\b{_MONTH}\s+{_DAY},?\s+(?:of\s+)?{_YEAR}\b",
    _I,
)
WORDY_DAY_FIRST = re.compile(
    rf"\b(?:\d{{1,2}}-{_MONTH}-(?:{_YEAR}|\d\d)|{_DAY}\s+(?:of\s+)?{_MONTH},?\s+{_YEAR})"
    r"\b",
    _I,
)
MONTH_KEYS = re.compile(r"jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec")
DAY_REACH = 12
_BIRTH = r"(?:dob|d\.o\.b\.?|date\s+of\s+birth|birth\s*date|born(?:\s+on)?|birthday)"
BIRTH_PARTIAL = re.compile(
    rf"\b{_BIRTH}\s*(?:is|was|:)?\s*:?\s*(?P<v>{_MONTH}\s+{_DAY}\b|{_DAY}\s+"
    rf"(?:of\s+)?{_MONTH}|\d{{1,2}}[/\-.]\d{{1,2}}(?![/\-.]?\d)|\d{{8}}\b)",
    _I,
)
_DIGIT = re.compile(r"\d")
_YEAR_LIKE = re.compile(r"(?:1[89]|20)\d\d")
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


def detect(text: str, lower: str | None = None) -> list[Candidate]:
    """Return DATE candidates: full dates with a year, or birth dates of any shape
    (``lower`` is ``text.lower()`` with the same length, when the caller has it)."""
    found: list[Candidate] = []
    if not _DIGIT.search(text):
        return found
    if lower is None:
        lower = text.lower()
    for match in NUMERIC.finditer(text):
        before = text[max(0, match.start() - 12) : match.start()]
        if _valid_numeric(match) and not _VERSION_BEFORE.search(before):
            found.append((match.start(), match.end(), "DATE"))
    found.extend(_spans(ISO.finditer(text)))
    if _YEAR_LIKE.search(text):
        found.extend(_wordy(text, lower))
    if any(word in lower for word in ("dob", "d.o.b", "birth", "born")):
        found.extend(
            (m.start("v"), m.end("v"), "DATE") for m in BIRTH_PARTIAL.finditer(text)
        )
    return found


def _wordy(text: str, lower: str) -> Iterator[Candidate]:
    for key in MONTH_KEYS.finditer(lower):
        start = key.start()
        if start and (text[start - 1].isalnum() or text[start - 1] == "_"):
            continue  # inside a word ("smart", "decide")
        match = WORDY_MONTH_FIRST.match(text, start)
        if match:
            yield match.start(), match.end(), "DATE"
        if not start or text[start - 1] not in " \t\n-":
            continue
        for day in range(max(0, start - DAY_REACH), start):
            if text[day].isdigit():
                match = WORDY_DAY_FIRST.match(text, day)
                if match:
                    yield match.start(), match.end(), "DATE"
                    break


def _spans(matches: Iterator[re.Match[str]]) -> Iterator[Candidate]:
    for match in matches:
        yield match.start(), match.end(), "DATE"
