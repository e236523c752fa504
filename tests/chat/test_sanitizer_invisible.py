"""Invisible (format, default-ignorable) characters, combining marks and look-alike
letters inside identifiers: detection still works and spans map to the original."""

import pytest

from chat.phi_normalize import CONFUSABLES, is_ignorable, normalize
from chat.sanitizer import sanitize

HIDDEN = [
    ("lrm in ssn", "SSN", "ssn 123\u200e-45-6789"),
    ("rlm in ssn", "SSN", "ssn 123-45\u200f-6789"),
    ("rlo in ssn", "SSN", "ssn 12\u202e3-45-6789"),
    ("isolate in card", "CREDIT_CARD", "card 4111\u2066 1111 1111\u2069 1111"),
    ("word joiner in card", "CREDIT_CARD", "card 4111 1111\u2064 1111 1111"),
    ("hangul filler in phone", "PHONE", "call (555)\u3164 010-0142 today"),
    ("hangul choseong filler in phone", "PHONE", "call (555) 010\u115f-0142"),
    ("variation selector in dob", "DATE", "DOB 1950-01\ufe0f-31"),
    ("grapheme joiner in dob", "DATE", "DOB 1950\u034f-01-31"),
    ("mongolian vowel separator in email", "EMAIL", "canary.pat\u180eient@example.org"),
    ("rlm in email", "EMAIL", "mail canary.patient@\u200fexample.org"),
    ("tag character in mrn", "MRN", "chart MRN-CANARY\U000e0041-0001"),
    ("combining acute in ssn digits", "SSN", "ssn 1\u03012\u03013-45-6789"),
    ("combining mark after @", "EMAIL", "canary.patient@\u0308example.org"),
    ("enclosing keycap in phone", "PHONE", "call (555) 010-01\u20e342"),
]
LOOKALIKES = [
    ("cyrillic A in mrn", "MRN", "chart MRN-C\u0410NARY-0001"),
    ("cyrillic e in e-mail domain", "EMAIL", "mail canary.patient@\u0435xample.org"),
    ("greek omicron in e-mail tld", "EMAIL", "mail canary.patient@example.\u03bfrg"),
    (
        "cyrillic local part",
        "EMAIL",
        "mail \u0441\u0430n\u0430r\u0443.\u0440\u0430ti\u0435nt@example.org",
    ),
    ("greek capitals in mrn label", "MRN", "chart \u039cR\u039d-CANARY-0001"),
]
CRITICAL = {"SSN", "CREDIT_CARD", "MRN"}


@pytest.mark.parametrize(("label", "kind", "text"), HIDDEN, ids=[h[0] for h in HIDDEN])
def test_invisible_characters_inside_identifiers_do_not_hide_them(
    label: str, kind: str, text: str
) -> None:
    result = sanitize(text, strict=True)

    assert kind in result.counts
    assert result.blocked is (kind in CRITICAL)


@pytest.mark.parametrize(
    ("label", "kind", "text"), LOOKALIKES, ids=[x[0] for x in LOOKALIKES]
)
def test_look_alike_letters_inside_identifiers_do_not_hide_them(
    label: str, kind: str, text: str
) -> None:
    result = sanitize(text, strict=True)

    assert kind in result.counts
    assert result.blocked is (kind in CRITICAL)


@pytest.mark.parametrize(
    "char", ["\u200e", "\u202a", "\u2066", "\u2061", "\u00ad", "\u0600", "\U000e0001"]
)
def test_every_format_character_is_ignorable(char: str) -> None:
    assert is_ignorable(char) is True


@pytest.mark.parametrize(
    "char", ["\u034f", "\u115f", "\u1160", "\u3164", "\uffa0", "\ufe0f", "\u180b"]
)
def test_default_ignorable_characters_outside_cf_are_ignorable(char: str) -> None:
    assert is_ignorable(char) is True


@pytest.mark.parametrize("char", ["a", "\u0430", "\u0301", " ", "\u00e9", "\u4e00"])
def test_visible_characters_are_not_ignorable(char: str) -> None:
    assert is_ignorable(char) is False


def test_spans_cover_the_original_characters_around_hidden_ones() -> None:
    value = "canary.pat\u200eient@\u0435xample.org"
    text = f"write \u2066{value}\u2069 now"

    result = sanitize(text)

    assert [text[s.start : s.end] for s in result.spans] == [value]
    assert result.text == "write \u2066[EMAIL]\u2069 now"


def test_genuinely_cyrillic_and_greek_words_keep_their_letters() -> None:
    text = "\u041f\u0440\u0438\u0432\u0435\u0442 \u0410\u043d\u043d\u0430, \u039a\u03b1\u03bb\u03b7\u03bc\u03ad\u03c1\u03b1"

    assert normalize(text).text == text


def test_a_word_made_only_of_look_alikes_is_folded() -> None:
    assert normalize("\u0410\u0412\u0421 1").text == "ABC 1"


def test_combining_marks_in_non_latin_words_are_kept() -> None:
    text = "\u0939\u093f\u0928\u094d\u0926\u0940"

    assert normalize(text).text == text


def test_text_outside_spans_keeps_its_look_alike_letters() -> None:
    text = "\u0421\u0430\u0448\u0430 walked 9,000 steps"

    assert sanitize(text).text == text


def test_confusables_table_maps_only_to_ascii_letters() -> None:
    assert all(v.isascii() and v.isalpha() for v in CONFUSABLES.values())
    assert {"\u0410", "\u0430", "\u0435", "\u043e", "\u0421", "\u039f"} <= set(
        CONFUSABLES
    )


def test_a_turkish_dotless_i_is_a_letter_not_a_look_alike() -> None:
    assert normalize("Y\u0131lmaz").text == "Y\u0131lmaz"


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        ("MRN", "\u0130\u0130\u0130 my MRN is 48213377"),
        ("DEVICE_ID", "\u0130zmir: serial number C39XK2PLQ1GH"),
    ],
)
def test_a_dotted_capital_i_does_not_shift_labelled_id_detection(
    kind: str, text: str
) -> None:
    assert kind in sanitize(text).counts
