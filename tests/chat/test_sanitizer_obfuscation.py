"""Tests for obfuscated identifiers: normalisation, offsets and Hypothesis fuzzing."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chat.phi_normalize import normalize
from chat.sanitizer import sanitize

INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"]
DASHES = ["\u2010", "\u2011", "\u2012", "\u2013", "\u2014", "\u2015", "\u2212"]
DASHES += ["\ufe63", "\uff0d"]
DIGIT_BASES = [0xFF10, 0x0660, 0x06F0, 0x0966, 0x09E6]  # fullwidth, Arabic-Indic...
# Format (Cf) characters plus the default-ignorable ones outside Cf.
IGNORABLE = st.one_of(
    st.characters(categories=["Cf"]),
    st.sampled_from(
        ["\u034f", "\u115f", "\u1160", "\u3164", "\uffa0", "\u17b4", "\u180b"]
        + [chr(c) for c in range(0xFE00, 0xFE10)]
        + ["\U000e0100", "\U000e01ef"]
    ),
)
COMBINING = st.characters(categories=["Mn", "Me"])
# Written out here rather than read from chat/phi_data, so the test checks the table.
LOOKALIKES = {
    "a": "\u0430\u03b1",
    "c": "\u0441\u03f2",
    "e": "\u0435",
    "i": "\u0456\u03b9",
    "o": "\u043e\u03bf",
    "p": "\u0440\u03c1",
    "x": "\u0445\u03c7",
    "y": "\u0443",
    "A": "\u0410\u0391",
    "C": "\u0421",
    "M": "\u041c\u039c",
    "N": "\u039d",
    "Y": "\u04ae\u03a5",
}
CANARIES = [
    ("SSN", "my ssn is {} ok", "123-45-6789"),
    ("EMAIL", "email me at {} please", "canary.patient@example.org"),
    ("MRN", "chart {} attached", "MRN-CANARY-0001"),
    ("DATE", "DOB {} thanks", "1950-01-31"),
    ("PHONE", "call me at {} today", "555-0142"),
    ("PHONE", "call me at {} today", "(555) 010-0142"),
    ("CREDIT_CARD", "paid with {} twice", "4111 1111 1111 1111"),
]
CRITICAL = {"SSN", "MRN", "CREDIT_CARD"}
OBFUSCATED = [
    (
        "fullwidth digits",
        "ssn \uff11\uff12\uff13-\uff14\uff15-\uff16\uff17\uff18\uff19",
    ),
    (
        "arabic-indic digits",
        "ssn \u0661\u0662\u0663-\u0664\u0665-\u0666\u0667\u0668\u0669",
    ),
    ("zero width space", "ssn 123\u200b-45-6789"),
    ("soft hyphen", "ssn 123\u00ad-45-67\u00ad89"),
    ("non-breaking hyphen", "ssn 123\u201145\u20116789"),
    ("minus sign", "ssn 123\u221245\u22126789"),
    ("dotted", "ssn 123.45.6789"),
    ("spaced", "ssn 123 45 6789"),
    ("no separators with context", "social security number 123456789"),
]


def _mutate(value: str, data: st.DataObject) -> str:
    out = []
    for char in value:
        if char.isdigit() and data.draw(st.booleans()):
            char = chr(data.draw(st.sampled_from(DIGIT_BASES)) + int(char))
        elif char == "-" and data.draw(st.booleans()):
            char = data.draw(st.sampled_from(DASHES))
        elif char == "@" and data.draw(st.booleans()):
            char = "\uff20"
        out.append(char)
        if data.draw(st.integers(0, 3)) == 0:
            out.append(data.draw(st.sampled_from(INVISIBLE)))
    return "".join(out)


def _disguise(value: str, data: st.DataObject) -> tuple[str, list[int]]:
    """Swap letters for look-alikes; add invisible characters and combining marks.

    Returns the disguised value and the positions of the value's own letters and
    digits in it (inserted characters excluded)."""
    out: list[str] = []
    own: list[int] = []
    for char in value:
        if LOOKALIKES.get(char) and data.draw(st.booleans()):
            char = data.draw(st.sampled_from(LOOKALIKES[char]))
        if char.isalnum():
            own.append(len(out))
        out.append(char)
        roll = data.draw(st.integers(0, 5))
        if roll == 0:
            out.append(data.draw(IGNORABLE))
        elif roll == 1 and (char.isdigit() or char in "@."):
            out.append(data.draw(COMBINING))
    return "".join(out), own


@pytest.mark.parametrize(("label", "text"), OBFUSCATED, ids=[o[0] for o in OBFUSCATED])
def test_obfuscated_ssn_is_still_detected(label: str, text: str) -> None:
    result = sanitize(text)

    assert result.counts.get("SSN") == 1


def test_span_maps_back_through_zero_width_and_fullwidth_characters() -> None:
    value = "canary.pat\u200bient\uff20example.org"
    text = f"mail \ufeff{value} now"

    result = sanitize(text)

    assert [text[s.start : s.end] for s in result.spans] == [value]


def test_normalisation_keeps_one_origin_per_output_character() -> None:
    norm = normalize("a\u200bb\ufb01\uff11")

    assert norm.text == "abfi1"
    assert norm.origin == (0, 2, 3, 3, 4)


def test_ascii_text_is_not_copied_by_normalisation() -> None:
    norm = normalize("plain ascii 123")

    assert norm.origin is None


@pytest.mark.parametrize(
    ("kind", "template", "value"), CANARIES, ids=[c[0] for c in CANARIES]
)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_canaries_with_inserted_confusables_are_detected(
    kind: str, template: str, value: str, data: st.DataObject
) -> None:
    mutated = _mutate(value, data)
    text = template.format(mutated)
    start = text.index(mutated)

    result = sanitize(text)

    covered = {i for s in result.spans for i in range(s.start, s.end)}
    assert kind in result.counts
    assert all(
        i in covered for i in range(start, start + len(mutated)) if text[i].isalnum()
    )


@pytest.mark.parametrize(
    ("kind", "template", "value"), CANARIES, ids=[f"{c[0]} {c[2]}" for c in CANARIES]
)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_canaries_with_invisible_characters_and_look_alikes_are_detected(
    kind: str, template: str, value: str, data: st.DataObject
) -> None:
    mutated, own = _disguise(value, data)
    text = template.format(mutated)
    start = template.index("{}")

    result = sanitize(text, strict=True)

    covered = {i for s in result.spans if s.type == kind for i in range(s.start, s.end)}
    assert all(start + i in covered for i in own)
    assert result.blocked is (kind in CRITICAL)
