"""Regex detectors for structured identifiers (e-mail, phone, SSN, cards, ids...)."""

import ipaddress
import re
from collections.abc import Callable, Iterator

from chat.phi_ids import (
    Candidate,
    find_accounts,
    find_devices,
    find_labelled_ids,
    find_vehicles,
)

Detector = Callable[[str, str], Iterator[Candidate]]

_I = re.IGNORECASE
_SEP = r"[\s.\-]?"
_TLD = r"(?:com|org|net|edu|gov|io|co|us|uk|de|fr|ca|au|in|info|me|biz|health|app)"
_AT_WORD = r"(?:\s*[(\[{<]\s*at\s*[)\]}>]\s*|%40|@)"
_DOT_WORD = r"(?:\s*[(\[{<]\s*dot\s*[)\]}>]\s*|\.)"

EMAIL = re.compile(
    r"(?<![\w.+%-])[A-Za-z0-9][\w.+%-]*"
    rf"{_AT_WORD}[A-Za-z0-9-]+(?:{_DOT_WORD}[A-Za-z0-9-]+)*{_DOT_WORD}[A-Za-z]{{2,24}}"
    r"(?![\w-])",
    _I,
)
EMAIL_SPELLED = re.compile(
    r"(?<![\w.])[A-Za-z0-9][\w.+-]*(?:\s+dot\s+[A-Za-z0-9][\w+-]*)*\s+at\s+[A-Za-z0-9-]+"
    rf"(?:\s+dot\s+[A-Za-z0-9-]+)*\s+dot\s+{_TLD}\b",
    _I,
)
URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"'()]+[^\s<>\"'().,;:!?]", _I)
# "instagram.com/kwame_runs": a bare domain counts only with a path after it.
URL_BARE = re.compile(
    r"(?<![\w.@/-])[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)*\.(?:com|org|net|io|me|co|"
    r"uk|de|fr|ca|au|in|ly|gl|app|health|info|edu|gov|us)/[^\s<>\"'()]*"
    r"[^\s<>\"'().,;:!?]",
    _I,
)
# Patterns that start with a digit (or a literal) check the character before it
# with a look-behind placed after that first character: `re` then skips straight
# to candidates instead of trying the look-behind at every position (about twice
# as fast, same matches).
SSN = re.compile(
    r"\d(?<![\w-]\d)\d\d(?<!000|666)(?P<s>[\s.\-])(?!00)\d{2}(?P=s)(?!0000)\d{4}"
    r"(?![\w-])"
)
SSN_CONTEXT = re.compile(
    r"\b(?:ssn|ss#|social(?:\s+security)?(?:\s+(?:number|no\.?|#))?)"
    r"\s*(?:is|:|#|was)?\s*[:#]?\s*(?P<v>\d{3}\s?\d{2}\s?\d{4}|\d{9})(?!\d)",
    _I,
)
CARD = re.compile(r"\d(?<![\w.\-]\d)(?:[ \-]?\d){12,18}(?![\w\-]|\.\d)")
PHONE_US = re.compile(
    r"(?<![\w+\-.])(?:\+?1[\s.\-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.\-]?)\d{3}[\s.\-]?\d{4}"
    r"(?:\s*(?:x|ext\.?|extension)\s*\d{1,5})?(?![\w\-]|\.\d)",
    _I,
)
PHONE_INTL = re.compile(
    r"(?:\+(?<![\w+]\+)|0(?<![\w+]0)0)[1-9]\d{0,2}(?:[\s.\-]?\(?\d{1,5}\)?){2,6}(?![\w\-]|\.\d)"
)
PHONE_TRUNK = re.compile(r"0(?<![\w\-.]0)\d{2,4}[\s\-]?\d{3,4}[\s\-]?\d{3,4}(?![\w\-])")
# French-style pairs "06 12 34 56 78"; area code in brackets "(11) 98765-4321".
PHONE_PAIRS = re.compile(r"0(?<![\w\-.]0)[1-9](?:[\s.\-]\d{2}){4}(?![\w\-])")
PHONE_AREA = re.compile(r"\((?<![\w)]\()0?\d{2}\)\s?\d{4,5}[\s\-]?\d{4}(?![\w\-])")
PHONE_LOCAL = re.compile(
    r"(?:(?P<c>\b(?:call|text|phone|cell|mobile|tel|fax|number|reach me|ring|"
    r"whatsapp|landline|contact)\b[^\n\d]{0,20})|\b(?=555))"
    r"(?P<v>(?<![\d\-])\d{3}[\s.\-]\d{4})(?![\w\-])",
    _I,
)
IPV4 = re.compile(
    r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}"
    r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\w.]|\.\d)"
)
IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f.]{0,15}(?![\w:])")
VERSION_BEFORE = re.compile(r"(?:\bv|version|ios|android|firmware|build)\s*$", _I)
MAC = re.compile(
    r"[0-9A-Fa-f](?<![\w:\-][0-9A-Fa-f])[0-9A-Fa-f](?P<m>[:\-])[0-9A-Fa-f]{2}(?:(?P=m)[0-9A-Fa-f]{2}){4}"
    r"(?![\w:\-])"
)
UUID = re.compile(
    r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", _I
)
AGE_NUMBER = re.compile(
    r"(?:9(?<![\w.,/:\-]9)\d|1(?<![\w.,/:\-]1)[01]\d)(?![\w%]|[.,:/]\d)"
)
AGE_YEARS_AFTER = re.compile(
    r"(?:\s*|-)(?:years?|yrs?)(?:\s*|-)old\b|\s*(?:yo|y/o|y\.o\.)(?!\w)", _I
)
AGE_UNIT_AFTER = re.compile(
    r"\s*(?:%|percent|min|minutes|hours|hrs|sec|seconds|steps|km|k|kg|lbs?|mi|miles|"
    r"m|bpm|days|times|degrees|cal|kcal|feet|ft|floors|mg|points|pts|am|pm)\b",
    _I,
)
AGE_BEFORE = re.compile(
    r"(?:\b(?:i'?m|i\s+am|im|aged?|age\s+is|age\s+of|turned|turning|turns?|he'?s|"
    r"she'?s|they'?re|is\s+now|(?:mom|mum|mother|dad|father|gran\w*|grand\w*|nana|"
    r"husband|wife|aunt|uncle|patient|he|she|who)\s+is)|(?-i:\b[A-Z][a-z]+)\s+is)"
    r"\s*:?\s*$",
    _I,
)
# "Sven Lindqvist, 91, and ...": an age in apposition to a capitalised name.
AGE_APPOSITION = re.compile(
    r"(?-i:[A-Z][a-z]+),\s*(?P<v>9\d|1[01]\d)\s*(?:,|\)|\band\b)"
)
_CARD_PREFIX = re.compile(r"4|5[1-5]|2[2-7]|3[47]|3[0689]|6011|65|64[4-9]|62|35")


def luhn_ok(digits: str) -> bool:
    """Return True when the digit string passes the Luhn checksum."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _simple(pattern: re.Pattern[str], kind: str, group: str | int = 0) -> Detector:
    def detect(text: str, lower: str) -> Iterator[Candidate]:
        for match in pattern.finditer(text):
            if match.group(group) is not None:
                yield match.start(group), match.end(group), kind

    return detect


def _digits(value: str) -> str:
    return "".join(c for c in value if c.isdigit())


def find_cards(text: str, lower: str) -> Iterator[Candidate]:
    for match in CARD.finditer(text):
        digits = _digits(match.group())
        if len(digits) == 15 and digits[:2] not in ("34", "37"):
            continue  # Only Amex uses 15 digits; 15-digit IMEIs must not become cards.
        if 13 <= len(digits) <= 19 and _CARD_PREFIX.match(digits) and luhn_ok(digits):
            yield match.start(), match.end(), "CREDIT_CARD"


def find_phones(text: str, lower: str) -> Iterator[Candidate]:
    for pattern in (PHONE_US, PHONE_INTL, PHONE_TRUNK, PHONE_PAIRS, PHONE_AREA):
        for match in pattern.finditer(text):
            if 7 <= len(_digits(match.group())) <= 15:
                yield match.start(), match.end(), "PHONE"
    if _LOCAL_HINT.search(text):
        for match in PHONE_LOCAL.finditer(text):
            yield match.start("v"), match.end("v"), "PHONE"


def find_ips(text: str, lower: str) -> Iterator[Candidate]:
    for match in IPV4.finditer(text) if _IPV4_HINT.search(text) else ():
        if not VERSION_BEFORE.search(text, max(0, match.start() - 12), match.start()):
            yield match.start(), match.end(), "IP"
    for match in IPV6.finditer(text) if _IPV6_HINT.search(text) else ():
        value = match.group()
        if sum(c.isalnum() for c in value) < 3:
            continue
        try:
            ipaddress.IPv6Address(value)
        except ValueError:
            continue
        yield match.start(), match.end(), "IP"


def find_ages(text: str, lower: str) -> Iterator[Candidate]:
    for match in AGE_APPOSITION.finditer(text):
        yield match.start("v"), match.end("v"), "AGE_OVER_89"
    for match in AGE_NUMBER.finditer(text):
        years = AGE_YEARS_AFTER.match(text, match.end())
        if years:
            yield match.start(), years.end(), "AGE_OVER_89"
        elif not AGE_UNIT_AFTER.match(text, match.end()) and AGE_BEFORE.search(
            text, max(0, match.start() - 30), match.start()
        ):
            yield match.start(), match.end(), "AGE_OVER_89"


_DIGIT = ("0", "1", "2", "3", "4", "5", "6", "7", "8", "9")
# Regex gates: a necessary part of every match of the detectors behind them, and
# far cheaper to look for (they start with a literal or a digit, which lets `re`
# skip ahead, where the detectors start with look-behinds that it must try at
# every position).
# Seven digits at most three separators apart: every SSN, card and phone shape.
_SEVEN_DIGITS = re.compile(r"\d(?:[\s.\-()]{0,3}\d){6}")
_LOCAL_HINT = re.compile(r"\d{3}[\s.\-]\d{4}")
_IPV4_HINT = re.compile(r"\d\.\d{1,3}\.\d{1,3}\.\d")
_IPV6_HINT = re.compile(r":[0-9A-Fa-f]{0,4}:")
_UUID_HINT = re.compile(r"-[0-9A-Fa-f]{4}-")
_MAC_HINT = re.compile(r"[:\-][0-9A-Fa-f]{2}[:\-]")
_URL_BARE_HINT = re.compile(
    r"\.(?:com|org|net|io|me|co|uk|de|fr|ca|au|in|ly|gl|app|health|info|edu|gov|us)/",
    _I,
)
_MRN_WORDS = (
    *("mrn", "record", "patient", "chart", "plan", "member", "subscriber"),
    *("beneficiary", "policy", "insurance", "group", "acc", "claim", "medic"),
)
_LICENSE_WORDS = ("licen", "dl", "passport", "certificate", "npi", "dea", "permit")
# (gate, detector): the gate is either substrings of the lowercased text, one of
# which must be present, or a regex searched in the text. An empty gate always
# runs. Gates only skip work: each detector's regex still decides on its own.
DETECTORS: tuple[tuple[tuple[str, ...] | re.Pattern[str], Detector], ...] = (
    (("@", "%40", "(at", "[at", "{at", "<at"), _simple(EMAIL, "EMAIL")),
    ((" dot ",), _simple(EMAIL_SPELLED, "EMAIL")),
    (("http", "www."), _simple(URL, "URL")),
    (_URL_BARE_HINT, _simple(URL_BARE, "URL")),
    (_SEVEN_DIGITS, _simple(SSN, "SSN")),
    (("ss", "social"), _simple(SSN_CONTEXT, "SSN", "v")),
    (_SEVEN_DIGITS, find_cards),
    (_SEVEN_DIGITS, find_phones),
    ((".", ":"), find_ips),
    (_MAC_HINT, _simple(MAC, "DEVICE_ID")),
    (_UUID_HINT, _simple(UUID, "DEVICE_ID")),
    (("imei", "meid", "serial", "s/n", "sn", " id", "udid"), find_devices),
    (_MRN_WORDS + _LICENSE_WORDS + ("state", "cdl"), find_labelled_ids),
    (_DIGIT, find_accounts),
    (("plate", "tag", "vin", "reg", *_DIGIT), find_vehicles),
    (("9", "10", "11"), find_ages),
)


def detect(text: str, lower: str | None = None) -> list[Candidate]:
    """Return every structured-identifier candidate found in normalised text
    (``lower`` is ``text.lower()`` when the caller already has it)."""
    if lower is None:
        lower = text.lower()
    found: list[Candidate] = []
    passed: dict[re.Pattern[str], bool] = {}
    for gate, detector in DETECTORS:
        if isinstance(gate, re.Pattern):
            hit = passed.get(gate)
            if hit is None:
                hit = passed[gate] = gate.search(text) is not None
            if not hit:
                continue
        elif gate and not any(word in lower for word in gate):
            continue
        found.extend(detector(text, lower))
    return found
