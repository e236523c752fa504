"""Detectors for labelled ids: record, plan and account numbers, IBANs, licences,
passports, device serials and IMEIs, plates and VINs.

Each labelled pattern is tried only where one of its label words starts in the
lowercased text (a plain literal scan, several times faster than letting an
IGNORECASE alternation try every position).
"""

import re
from collections.abc import Iterator

Candidate = tuple[int, int, str]

_I = re.IGNORECASE
_ID = (
    r"(?P<v>(?=[A-Za-z0-9\-/.]*\d)[A-Za-z0-9]"
    r"(?:[A-Za-z0-9]|[\-/.](?=[A-Za-z0-9])){2,30})"
)
_LINK = r"\s*(?:is|was|=|:|#|no\.?|num(?:ber)?)?\s*[:#]?\s*"
IMEI = re.compile(r"\b(?:imei|meid)\b[^\d\n]{0,25}?(?P<v>\d(?:[\s\-]?\d){13,16})\b", _I)
SERIAL = re.compile(
    rf"\b(?:serial(?:\s+(?:number|no\.?|#))?|s/n|sn|device\s+id|udid|android\s+id|"
    rf"advertising\s+id|hardware\s+id){_LINK}{_ID}",
    _I,
)
MRN_LABEL = re.compile(
    r"\b(?:mrn|medical\s+record(?:\s+(?:number|no\.?|#))?|patient\s+(?:id|number|no\.?)|"
    r"record\s+(?:number|no\.?|#)|chart\s+(?:number|no\.?|#)|"
    r"health\s+plan(?:\s+(?:id|number|no\.?|#))?|health\s+card(?:\s+(?:number|no\.?))?|"
    r"membership(?:\s+(?:id|number|no\.?|#))?|"
    r"(?:member|subscriber|beneficiary|policy|insurance|group|account|acct|claim)"
    r"(?:\s+(?:id|number|no\.?|#))?|medicare(?:\s+(?:id|number))?|"
    r"medicaid(?:\s+(?:id|number))?)"
    rf"(?P<link>{_LINK}|-){_ID}",
    _I,
)
# National health numbers written in spaced groups ("NHS number 943 476 5919").
HEALTH_NUMBER = re.compile(
    r"\b(?:nhs|chi|health\s+card|medicare|ohip|sin)\s*(?:number|no\.?|#)?\s*(?:is|:)?\s*"
    r"(?P<v>\d{3,4}[\s\-]\d{3}[\s\-]\d{3,4}(?:[\s\-][A-Z]{2})?)(?![\w\-])",
    _I,
)
# IBAN: country, check digits, 11-30 letters/digits (spaced in fours or not);
# the ISO 7064 mod-97 check keeps product codes out.
IBAN = re.compile(
    r"(?<![\w\-])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![\w\-])"
)
LICENSE_LABEL = re.compile(
    r"\b(?:driver'?s?\s+licen[cs]e(?:\s+(?:number|no\.?|#))?|cdl|"
    r"licen[cs]e(?!\s+plate)(?:\s+(?:number|no\.?|#))?|dl|"
    r"passport(?:\s+(?:number|no\.?|#))?|certificate(?:\s+(?:number|no\.?|#))?|"
    r"npi|dea(?:\s+number)?|permit(?:\s+(?:number|no\.?|#))?|state\s+id)"
    rf"{_LINK}{_ID}",
    _I,
)
PLATE = re.compile(
    rf"\b(?:licen[cs]e\s+plate|plate(?:\s+(?:number|no\.?|#))?|tag\s+number|"
    rf"(?:car\s+)?reg(?:istration)?(?:\s+(?:number|no\.?|#))?)"
    rf"{_LINK}(?P<v>[A-Za-z0-9]{{1,4}}[\s\-]?[A-Za-z0-9]{{1,4}})\b",
    _I,
)
VIN = re.compile(r"[A-HJ-NPR-Z0-9]{17}", _I)
_VIN_LOOSE = re.compile(r"[A-Za-z0-9]{17,}")
_IBAN_HINT = re.compile(r"[A-Z]{2}\d\d")
# Label words, lowercase, at which each labelled pattern is tried.
_MRN_KEYS = re.compile(
    r"mrn|medical|patient|record|chart|health|membership|member|subscriber|"
    r"beneficiary|policy|insurance|group|account|acct|claim|medicare|medicaid"
)
_LICENSE_KEYS = re.compile(
    r"driver|licen|cdl|dl|passport|certificate|npi|dea|permit|state"
)
_HEALTH_KEYS = re.compile(r"nhs|chi|health|medicare|ohip|sin")
_DEVICE_KEYS = re.compile(
    r"serial|s/n|sn|device|udid|android|advertising|hardware|imei|meid"
)
_PLATE_KEYS = re.compile(r"licen|plate|tag|car|reg")


def anchored(
    keys: re.Pattern[str], pattern: re.Pattern[str], text: str, lower: str
) -> Iterator[re.Match[str]]:
    """Matches of pattern (IGNORECASE) that start where a label word starts."""
    reached = -1
    for key in keys.finditer(lower):
        if key.start() < reached:
            continue
        match = pattern.match(text, key.start())
        if match:
            reached = match.end()
            yield match


def iban_ok(value: str) -> bool:
    """ISO 13616 check: move the first four characters last, letters to numbers."""
    compact = value.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    digits = "".join(str(int(c, 36)) for c in compact[4:] + compact[:4])
    return int(digits) % 97 == 1


def find_accounts(text: str, lower: str) -> Iterator[Candidate]:
    if _IBAN_HINT.search(text):
        for match in IBAN.finditer(text):
            if iban_ok(match.group()):
                yield match.start(), match.end(), "MRN"
    for match in anchored(_HEALTH_KEYS, HEALTH_NUMBER, text, lower):
        yield match.start("v"), match.end("v"), "MRN"


def find_labelled_ids(text: str, lower: str) -> Iterator[Candidate]:
    for keys, pattern, kind in (
        (_MRN_KEYS, MRN_LABEL, "MRN"),
        (_LICENSE_KEYS, LICENSE_LABEL, "LICENSE"),
    ):
        for match in anchored(keys, pattern, text, lower):
            if not any(c.isdigit() for c in match.group("v")):
                continue
            start = match.start("v")
            if kind == "MRN" and match.group("link") == "-":
                start = match.start()
            yield start, match.end("v"), kind


def find_devices(text: str, lower: str) -> Iterator[Candidate]:
    for pattern in (IMEI, SERIAL):
        for match in anchored(_DEVICE_KEYS, pattern, text, lower):
            yield match.start("v"), match.end("v"), "DEVICE_ID"


def find_vehicles(text: str, lower: str) -> Iterator[Candidate]:
    for match in anchored(_PLATE_KEYS, PLATE, text, lower):
        if any(c.isdigit() for c in match.group("v")):
            yield match.start("v"), match.end("v"), "VEHICLE"
    for match in _VIN_LOOSE.finditer(text):
        value = match.group()
        if len(value) != 17 or not VIN.fullmatch(value):
            continue
        letters = sum(c.isalpha() for c in value)
        if letters >= 2 and sum(c.isdigit() for c in value) >= 5:
            yield match.start(), match.end(), "VEHICLE"
