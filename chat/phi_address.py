"""Detector for street addresses, PO boxes, units, "City, ST" and postal codes."""

import re

from chat.phi_ids import anchored
from chat.phi_words import (
    AMBIGUOUS_SUFFIXES,
    NOT_NAMES,
    STATE_CODES,
    STATE_NAMES,
    STREET_SUFFIXES,
)

Candidate = tuple[int, int, str]

_I = re.IGNORECASE
_SUFFIX = "|".join(sorted((re.escape(s) for s in STREET_SUFFIXES), key=len)[::-1])
_STATES = "|".join(STATE_CODES)
_STATE_NAMES = "|".join(re.escape(s) for s in STATE_NAMES)
_DIR = r"(?:N|S|E|W|NE|NW|SE|SW|North|South|East|West)\.?"
_UNIT = (
    r"(?:,?\s*(?:apt|apartment|suite|ste|unit|#|fl|floor|rm|room|bldg|building|"
    r"flat)\.?\s*#?\s*[A-Za-z]?\d+[A-Za-z]?(?:-\d+)?\b|,?\s*(?:apt|unit|suite)\.?\s*"
    r"#?\s*[A-Za-z]\b)?"
)
_CITY = (
    rf"(?:,?\s+(?-i:[A-Z][a-z]+(?:[ \-][A-Z][a-z]+){{0,2}})(?:,\s*|\s+)"
    rf"(?-i:{_STATES}|{_STATE_NAMES})\b)?"
)
# Patterns that start with a digit check the character before it with a look-behind
# placed after that digit: `re` then skips straight to digits instead of trying the
# look-behind at every position (about twice as fast, same matches).
STREET = re.compile(
    r"(?P<num>\d(?<![\w\-/.,]\d)\d{0,5}[A-Za-z]?(?:[\-/]\d{1,4}[A-Za-z]?)?)\s+"
    rf"(?:{_DIR}\s+)?"
    r"(?P<name>(?:[^\W\d_][\w'.\-]*|\d{1,3}(?:st|nd|rd|th))"
    r"(?:\s+[^\W\d_][\w'.\-]*){0,3}?)\s+"
    rf"(?P<suf>{_SUFFIX})\b\.?(?:\s+(?:{_SUFFIX})\b\.?)?(?:\s+{_DIR}(?!\w))?{_UNIT}{_CITY}",
    _I,
)
ROUTE = re.compile(
    r"\d(?<![\w\-/.]\d)\d{0,5}\s+(?:(?:state|county|us|farm\s+to\s+market|rural)\s+)?"
    r"(?:route|rte|highway|hwy|road|rd)\s+\d{1,4}[A-Za-z]?\b" + _UNIT + _CITY,
    _I,
)
PREFIX_STREET = re.compile(
    r"\d(?<![\w\-/.]\d)\d{0,4},?\s+(?:rue|calle|via|viale|avenida|chemin|piazza|corso|"
    r"rua|avinguda)\s+(?:(?:de|del|de\s+la|des|du|di|della|da|do|dos)\s+)?"
    r"(?-i:[A-Z][\w'\-]+)(?:\s+(?-i:[A-Z][\w'\-]+))?",
    _I,
)
PO_BOX = re.compile(
    r"\b(?:(?:p\.?\s?o\.?\s*box|post\s+office\s+box|pob)|"
    r"(?:rr|r\.r\.|rural\s+route|hc|h\.c\.|star\s+route)\s*\d{1,4},?\s*box)"
    r"\s*#?\s*\d{1,8}\b" + _CITY,
    _I,
)
# "1250 Broadway", "14 The Green": a number and a street name with no suffix.
NAMED_STREET = re.compile(
    r"\d(?<![\w\-/.,]\d)\d{0,5}[A-Za-z]?\s+(?:Broadway|Bowery|The\s+(?:Green|Strand|"
    r"Mall|Parade|Crescent|Avenue|Drive|Close|Square|Causeway|Esplanade))\b"
)
# Streets named before their number: "Via Roma 16", "Calle Mayor 7".
NUMBER_LAST = re.compile(
    r"\b(?:rue|calle|via|viale|avenida|rua|piazza|corso|carrer|plaza|paseo|"
    r"largo|travessa|ulica|ul\.)\s+(?:(?:de|del|de\s+la|dos|da|do|di)\s+)?"
    r"(?-i:[A-Z][\w'\-]+)(?:\s+(?-i:[A-Z][\w'\-]+))?,?\s+\d{1,4}[A-Za-z]?\b",
    _I,
)
UNIT_ALONE = re.compile(
    r"\b(?:apt|apartment|suite|ste|unit|lot|plot)\.?\s*#?\s*\d{1,5}[A-Za-z]?\b|"
    r"\bflat\s+\d{1,4}[A-Za-z]?\b",
    _I,
)
# What may follow a street address: ", Toronto, ON", ", 10115 Berlin", " VIC 3065".
_REGION_CODES = frozenset(STATE_CODES) | frozenset(
    (
        "ON",
        "QC",
        "BC",
        "AB",
        "MB",
        "SK",
        "NS",
        "NB",
        "NL",
        "PE",
        "YT",
        "NU",
        "NT",
        "NSW",
        "VIC",
        "QLD",
        "WA",
        "SA",
        "TAS",
        "ACT",
    )
)
TAIL = re.compile(
    r"(?P<sep>,\s*|\s+)(?:\d{4,5}\s+)?(?P<place>[A-Z][^\W\d_]*(?!\w)\.?"
    r"(?:[ \-][A-Z][^\W\d_]*(?!\w)\.?){0,3})"
)
TAIL_CODE = re.compile(r"\s+(?P<zip>\d{4}|\d{6})(?![\w\-])")
CITY_STATE = re.compile(
    r"(?<![\w])(?-i:[A-Z][a-z]+(?:[ \-][A-Z][a-z]+){0,2}),\s*"
    rf"(?-i:{_STATES}|{_STATE_NAMES})(?=\s+\d{{5}}|\s*[,.;!?)]|\s*$|\s+(?-i:[a-z]))",
)
EURO_STREET = re.compile(
    r"\b(?-i:[A-Z][a-zäöüß]+(?:strasse|straße|str\.|straat|gatan|vej|veien|weg|gasse))"
    r"\s+\d{1,4}[a-z]?\b"
)
# A five-digit ZIP (optionally +4) after a ZIP label or a state. Found as numbers
# first, then the label is looked for just before each one (ZIP_LABEL_BEFORE, which
# ends where the number starts): far cheaper than trying the label everywhere.
ZIP_NUMBER = re.compile(r"\d{5}(?:-\d{4})?(?![\w\-])")
ZIP_LABEL_BEFORE = re.compile(
    rf"(?:\b(?:zip|zipcode|zip\s+code|postal\s+code|postcode)\s*(?:is|:|#)?\s*:?\s*|"
    rf"(?-i:\b(?:{_STATES}|{_STATE_NAMES})),?\s+)\Z",
    _I,
)
_ZIP_LABEL_REACH = 48
POSTCODE = re.compile(
    r"[A-Z](?<!\w[A-Z])(?:[A-Z]?\d[A-Z\d]?\s?\d[ABD-HJLNP-UW-Z]{2}|\d[A-Z]\s?\d[A-Z]\d)\b"
)
_NOT_STREET_WORDS = frozenset(
    (
        *("on", "the", "a", "an", "to", "at", "in", "of", "my", "and", "or", "for"),
        *("from", "with", "by", "is", "was", "are", "steps", "step", "miles", "mile"),
        *("km", "minutes", "mins", "hours", "hrs", "days", "times", "laps", "floors"),
        *("calories", "cal", "percent", "k", "m", "kg", "lbs", "bpm", "seconds"),
        *("secs", "am", "pm", "blocks", "down", "up", "along", "around", "near"),
        *("past", "over", "across", "through", "extra", "more", "less", "every"),
    )
)


def _street_ok(match: re.Match[str]) -> bool:
    words = match.group("name").split()
    if any(word.lower().strip(".") in _NOT_STREET_WORDS for word in words):
        return False
    suffix = match.group("suf").lower()
    if suffix in AMBIGUOUS_SUFFIXES:
        return all(word[0].isupper() or word[0].isdigit() for word in words) and (
            match.group("suf")[0].isupper()
        )
    return True


_EURO_WORDS = ("stras", "straß", "str.", "straat", "gatan", "vej", "weg", "gasse")
# (cheap substring gate on the lowercased text, pattern); gates only skip work.
_GATED = (
    (("route", "rte", "highway", "hwy", "road", "rd"), ROUTE),
    (("box", "pob"), PO_BOX),
    (("broadway", "bowery", " the "), NAMED_STREET),
    (
        ("rue", "calle", "via", "avenida", "chemin", "piazza", "corso", "rua"),
        PREFIX_STREET,
    ),
    (_EURO_WORDS, EURO_STREET),
)
# (label words, lowercase, pattern): the pattern is tried only where a label word
# starts (a literal scan is several times faster than an IGNORECASE alternation).
_ANCHORED = (
    (re.compile(r"apt|apartment|suite|ste|unit|lot|plot|flat"), UNIT_ALONE),
    (
        re.compile(
            r"rue|calle|via|avenida|rua|piazza|corso|carrer|plaza|paseo|largo|"
            r"travessa|ulica|ul\."
        ),
        NUMBER_LAST,
    ),
)
_CITY_STATE_HINT = re.compile(rf",\s*(?:{_STATES}|{_STATE_NAMES})")


def _free_start(text: str, start: int) -> bool:
    """No letter, digit, "_" or "-" right before ``start``: a ZIP+4 starts clean."""
    if not start:
        return True
    before = text[start - 1]
    return not (before.isalnum() or before in "_-")


def _tail(text: str, end: int, found: list[Candidate]) -> int:
    """Extend an address over the town, region and postcode that follow it."""
    for _ in range(4):
        match = TAIL.match(text, end)
        if not match:
            break
        place = match.group("place")
        first = place.split()[0].rstrip(".").lower()
        is_code = place in _REGION_CODES
        if first in NOT_NAMES and not is_code:
            break
        if "," not in match.group("sep") and not is_code:
            words = place.split()
            if words[-1] not in _REGION_CODES:
                break
        end = match.end()
        code = TAIL_CODE.match(text, end)
        if code and (
            is_code
            or place.split()[-1] in _REGION_CODES
            or "," in text[match.start() : match.start() + 1]
        ):
            found.append((code.start("zip"), code.end("zip"), "ZIP"))
            break
    return end


def detect(text: str, lower: str | None = None) -> list[Candidate]:
    """Return ADDRESS and ZIP candidates found in normalised text (``lower`` is
    ``text.lower()`` with the same length, when the caller already has it)."""
    if lower is None:
        lower = text.lower()
    found: list[Candidate] = []
    streets = [m for m in STREET.finditer(text) if _street_ok(m)]
    for gate, pattern in _GATED:
        if any(word in lower for word in gate):
            streets.extend(pattern.finditer(text))
    for keys, pattern in _ANCHORED:
        streets.extend(anchored(keys, pattern, text, lower))
    if "," in text and _CITY_STATE_HINT.search(text):
        streets.extend(CITY_STATE.finditer(text))
    for match in streets:
        found.append((match.start(), _tail(text, match.end(), found), "ADDRESS"))
    for match in ZIP_NUMBER.finditer(text):
        start = match.start()
        if ZIP_LABEL_BEFORE.search(text, max(0, start - _ZIP_LABEL_REACH), start) or (
            "-" in match.group() and _free_start(text, start)
        ):  # ZIP+4 ("62704-1234") needs no label.
            found.append((start, match.end(), "ZIP"))
    found.extend((m.start(), m.end(), "ZIP") for m in POSTCODE.finditer(text))
    return found
