"""Regex detectors for structured identifiers (e-mail, phone, SSN, cards, ids...)."""

import ipaddress
import re
from collections.abc import Callable, Iterator

Candidate = tuple[int, int, str]

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
    r"(?<![\w.])[A-Za-z0-9][\w.+-]*\s+at\s+[A-Za-z0-9-]+"
    rf"(?:\s+dot\s+[A-Za-z0-9-]+)*\s+dot\s+{_TLD}\b",
    _I,
)
URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"'()]+[^\s<>\"'().,;:!?]", _I)
SSN = re.compile(
    r"(?<![\w-])(?!000|666)\d{3}(?P<s>[\s.\-])(?!00)\d{2}(?P=s)(?!0000)\d{4}(?![\w-])"
)
SSN_CONTEXT = re.compile(
    r"\b(?:ssn|ss#|social(?:\s+security)?(?:\s+(?:number|no\.?|#))?)"
    r"\s*(?:is|:|#|was)?\s*[:#]?\s*(?P<v>\d{3}\s?\d{2}\s?\d{4}|\d{9})(?!\d)",
    _I,
)
CARD = re.compile(r"(?<![\w.\-])\d(?:[ \-]?\d){12,18}(?![\w\-]|\.\d)")
PHONE_US = re.compile(
    r"(?<![\w+\-.])(?:\+?1[\s.\-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.\-]?)\d{3}[\s.\-]?\d{4}"
    r"(?:\s*(?:x|ext\.?|extension)\s*\d{1,5})?(?![\w\-]|\.\d)",
    _I,
)
PHONE_INTL = re.compile(
    r"(?<![\w+])(?:\+|00)[1-9]\d{0,2}(?:[\s.\-]?\(?\d{1,5}\)?){2,6}(?![\w\-]|\.\d)"
)
PHONE_TRUNK = re.compile(r"(?<![\w\-.])0\d{2,4}[\s\-]?\d{3,4}[\s\-]?\d{3,4}(?![\w\-])")
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
    r"(?<![\w:\-])[0-9A-Fa-f]{2}(?P<m>[:\-])[0-9A-Fa-f]{2}(?:(?P=m)[0-9A-Fa-f]{2}){4}"
    r"(?![\w:\-])"
)
UUID = re.compile(
    r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", _I
)
_ID = (
    r"(?P<v>(?=[A-Za-z0-9\-/.]*\d)[A-Za-z0-9]"
    r"(?:[A-Za-z0-9]|[\-/.](?=[A-Za-z0-9])){2,30})"
)
_LINK = r"\s*(?:is|was|=|:|#|no\.?|num(?:ber)?)?\s*[:#]?\s*"
IMEI = re.compile(rf"\b(?:imei|meid){_LINK}(?P<v>\d(?:[\s\-]?\d){{13,16}})\b", _I)
SERIAL = re.compile(
    rf"\b(?:serial(?:\s+(?:number|no\.?|#))?|s/n|sn|device\s+id|udid|android\s+id|"
    rf"advertising\s+id|hardware\s+id){_LINK}{_ID}",
    _I,
)
MRN_LABEL = re.compile(
    r"\b(?:mrn|medical\s+record(?:\s+(?:number|no\.?|#))?|patient\s+(?:id|number|no\.?)|"
    r"record\s+(?:number|no\.?|#)|chart\s+(?:number|no\.?|#)|"
    r"health\s+plan(?:\s+(?:id|number|no\.?|#))?|"
    r"(?:member|subscriber|beneficiary|policy|insurance|group|account|acct|claim)"
    r"(?:\s+(?:id|number|no\.?|#))?|medicare(?:\s+(?:id|number))?|"
    r"medicaid(?:\s+(?:id|number))?)"
    rf"(?P<link>{_LINK}|-){_ID}",
    _I,
)
LICENSE_LABEL = re.compile(
    r"\b(?:driver'?s?\s+licen[cs]e(?:\s+(?:number|no\.?|#))?|"
    r"licen[cs]e(?!\s+plate)(?:\s+(?:number|no\.?|#))?|dl|"
    r"passport(?:\s+(?:number|no\.?|#))?|certificate(?:\s+(?:number|no\.?|#))?|"
    r"npi|dea(?:\s+number)?|permit(?:\s+(?:number|no\.?|#))?|state\s+id)"
    rf"{_LINK}{_ID}",
    _I,
)
PLATE = re.compile(
    rf"\b(?:licen[cs]e\s+plate|plate(?:\s+(?:number|no\.?|#))?|tag\s+number)"
    rf"{_LINK}(?P<v>[A-Za-z0-9]{{1,4}}[\s\-]?[A-Za-z0-9]{{1,4}})\b",
    _I,
)
VIN = re.compile(r"\b[A-HJ-NPR-Z0-9]{17}\b", _I)
AGE_NUMBER = re.compile(r"(?<![\w.,/:\-])(?:9\d|1[01]\d)(?![\w%]|[.,:/]\d)")
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


def _simple(
    pattern: re.Pattern[str], kind: str, group: str | int = 0
) -> Callable[[str], Iterator[Candidate]]:
    def detect(text: str) -> Iterator[Candidate]:
        for match in pattern.finditer(text):
            if match.group(group) is not None:
                yield match.start(group), match.end(group), kind

    return detect


def _digits(value: str) -> str:
    return "".join(c for c in value if c.isdigit())


def find_cards(text: str) -> Iterator[Candidate]:
    if not _MIN_DIGITS.match(text):
        return
    for match in CARD.finditer(text):
        digits = _digits(match.group())
        if len(digits) == 15 and digits[:2] not in ("34", "37"):
            continue  # Only Amex uses 15 digits; 15-digit IMEIs must not become cards.
        if 13 <= len(digits) <= 19 and _CARD_PREFIX.match(digits) and luhn_ok(digits):
            yield match.start(), match.end(), "CREDIT_CARD"


def find_phones(text: str) -> Iterator[Candidate]:
    if not _MIN_DIGITS.match(text):
        return
    for pattern in (PHONE_US, PHONE_INTL, PHONE_TRUNK):
        for match in pattern.finditer(text):
            if 7 <= len(_digits(match.group())) <= 15:
                yield match.start(), match.end(), "PHONE"
    for match in PHONE_LOCAL.finditer(text):
        yield match.start("v"), match.end("v"), "PHONE"


def find_ips(text: str) -> Iterator[Candidate]:
    for match in IPV4.finditer(text):
        if not VERSION_BEFORE.search(text, max(0, match.start() - 12), match.start()):
            yield match.start(), match.end(), "IP"
    for match in IPV6.finditer(text):
        value = match.group()
        if sum(c.isalnum() for c in value) < 3:
            continue
        try:
            ipaddress.IPv6Address(value)
        except ValueError:
            continue
        yield match.start(), match.end(), "IP"


def find_labelled_ids(text: str) -> Iterator[Candidate]:
    for pattern, kind in ((MRN_LABEL, "MRN"), (LICENSE_LABEL, "LICENSE")):
        for match in pattern.finditer(text):
            if not any(c.isdigit() for c in match.group("v")):
                continue
            start = match.start("v")
            if kind == "MRN" and match.group("link") == "-":
                start = match.start()
            yield start, match.end("v"), kind


def find_vehicles(text: str) -> Iterator[Candidate]:
    for match in PLATE.finditer(text):
        if any(c.isdigit() for c in match.group("v")):
            yield match.start("v"), match.end("v"), "VEHICLE"
    for match in VIN.finditer(text):
        value = match.group()
        letters = sum(c.isalpha() for c in value)
        if letters >= 2 and sum(c.isdigit() for c in value) >= 5:
            yield match.start(), match.end(), "VEHICLE"


def find_ages(text: str) -> Iterator[Candidate]:
    for match in AGE_NUMBER.finditer(text):
        years = AGE_YEARS_AFTER.match(text, match.end())
        if years:
            yield match.start(), years.end(), "AGE_OVER_89"
        elif not AGE_UNIT_AFTER.match(text, match.end()) and AGE_BEFORE.search(
            text, max(0, match.start() - 30), match.start()
        ):
            yield match.start(), match.end(), "AGE_OVER_89"


_DIGIT = ("0", "1", "2", "3", "4", "5", "6", "7", "8", "9")
_MRN_WORDS = ("mrn", "record", "patient", "chart", "plan", "member", "subscriber")
_MRN_WORDS += ("beneficiary", "policy", "insurance", "group", "acc", "claim", "medic")
_LICENSE_WORDS = ("licen", "dl", "passport", "certificate", "npi", "dea", "permit")
# (cheap substring gate on the lowercased text, detector). An empty gate always runs.
# Gates only skip work: each detector's regex still decides on its own.
DETECTORS: tuple[tuple[tuple[str, ...], Callable[[str], Iterator[Candidate]]], ...] = (
    (("@", "%40", "(at", "[at", "{at", "<at"), _simple(EMAIL, "EMAIL")),
    ((" dot ",), _simple(EMAIL_SPELLED, "EMAIL")),
    (("http", "www."), _simple(URL, "URL")),
    (_DIGIT, _simple(SSN, "SSN")),
    (("ss", "social"), _simple(SSN_CONTEXT, "SSN", "v")),
    (_DIGIT, find_cards),
    (_DIGIT, find_phones),
    ((".", ":"), find_ips),
    ((":", "-"), _simple(MAC, "DEVICE_ID")),
    (("-",), _simple(UUID, "DEVICE_ID")),
    (("imei", "meid"), _simple(IMEI, "DEVICE_ID", "v")),
    (("serial", "s/n", "sn", " id", "udid"), _simple(SERIAL, "DEVICE_ID", "v")),
    (_MRN_WORDS + _LICENSE_WORDS + ("state",), find_labelled_ids),
    (("plate", "tag", "vin", *_DIGIT), find_vehicles),
    (("9", "10", "11"), find_ages),
)
_MIN_DIGITS = re.compile(r"(?:\D*\d){7}")


def detect(text: str) -> list[Candidate]:
    """Return every structured-identifier candidate found in normalised text."""
    lower = text.lower()
    found: list[Candidate] = []
    for gate, detector in DETECTORS:
        if gate and not any(word in lower for word in gate):
            continue
        found.extend(detector(text))
    return found
