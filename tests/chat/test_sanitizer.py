"""Tests for chat.sanitizer: detection per type, untouched text, and the API."""

import pytest

from chat.sanitizer import DEFAULT_CRITICAL, PHI_TYPES, SanitizeResult, Span, sanitize

DETECTED = [
    ("EMAIL", "write to {} please", "jenny.k.walsh@gmail.com"),
    ("EMAIL", "contact {} for records", "patient(at)example(dot)org"),
    ("EMAIL", "it's {}, thanks", "jdoe at example dot com"),
    ("EMAIL", "mailto:{}", "r.gupta@outlook.com"),
    ("PHONE", "call me at {} after 5", "(617) 555-0198"),
    ("PHONE", "fax {} attn billing", "555.212.4477"),
    ("PHONE", "my mobile is {}", "+44 7700 900123"),
    ("PHONE", "text me on {}", "555-0142"),
    ("SSN", "my ssn is {}", "123-45-6789"),
    ("SSN", "social security {} on file", "123 45 6789"),
    ("SSN", "ssn {} thanks", "123456789"),
    ("DATE", "DOB {} and no steps", "03/14/1962"),
    ("DATE", "born {} in Ohio", "July 4, 1948"),
    ("DATE", "date of birth {}", "1950-01-31"),
    ("ADDRESS", "I live at {} now", "42 Oak Street"),
    ("ADDRESS", "send it to {} please", "PO Box 4471"),
    ("ADDRESS", "we moved to {} last week", "1435 Peachtree Rd NE Apt 907"),
    ("ZIP", "Springfield, IL {}", "62704"),
    ("ZIP", "my zip code is {}", "10025"),
    ("MRN", "my MRN is {}", "48213377"),
    ("MRN", "member ID {} from the insurer", "XKJ448812093"),
    ("LICENSE", "driver's license {} was asked", "D1234567"),
    ("LICENSE", "passport number {}", "X12345678"),
    ("VEHICLE", "VIN {} on the car", "1HGCM82633A004352"),
    ("VEHICLE", "license plate {} in the lot", "7ABC123"),
    ("DEVICE_ID", "IMEI {} on the phone", "356938035643809"),
    ("DEVICE_ID", "mac {} fails", "3C:22:FB:91:0A:7E"),
    ("DEVICE_ID", "serial number {} on the box", "C39XK2PLQ1GH"),
    ("URL", "see {} for steps", "https://www.strava.com/athletes/4821"),
    ("IP", "my IP is {} today", "73.162.18.44"),
    ("IP", "server {} refuses", "2001:db8:85a3::8a2e:370:7334"),
    ("CREDIT_CARD", "paid with {} twice", "4539 1488 0343 6467"),
    ("CREDIT_CARD", "card {} charged", "5500-0000-0000-0004"),
    ("AGE_OVER_89", "I'm {} and new to this", "92"),
    ("AGE_OVER_89", "my dad is {} and walks daily", "96 years old"),
    ("NAME", "my name is {} and it broke", "Sarah Mitchell"),
    ("NAME", "tell {} her fitbit isn't syncing", "Maria Lopez"),
    ("NAME", "{}, DOB 03/14/1962", "Jane Doe"),
    ("NAME", "this is Dr. {} from the clinic", "Feldman"),
    ("NAME", "Thanks, {}", "John"),
    ("NAME", "my name is {}, fitbit broke", "sofia martinez"),
]
UNTOUCHED = [
    ("step count", "I walked 12,345 steps today"),
    ("bare number", "my goal is 8000"),
    ("time pm", "it synced at 3pm"),
    ("time 24h", "sync stopped at 14:30"),
    ("percentage", "battery is at 95%"),
    ("minutes", "I walked for 90 minutes"),
    ("distance km", "ran 5 km this morning"),
    ("distance miles", "walked 3.2 miles"),
    ("ios version", "updated to iOS 17.4.1 yesterday"),
    ("android version", "Android 14 on my phone"),
    ("app version", "Samsung Health version 6.26.1.003"),
    ("pixel model", "Pixel 8 Pro step counter stuck"),
    ("iphone model", "iPhone 15 counts steps"),
    ("galaxy model", "Galaxy S24 shows 0 steps"),
    ("fitbit model", "Fitbit Charge 6 won't sync"),
    ("apple watch model", "Apple Watch Series 9 steps missing"),
    ("app names", "Apple Health, Health Connect, Google Fit and Samsung Health"),
    ("more app names", "Garmin Connect, Strava, Oura, Whoop, Polar, Mi Fitness"),
    ("relative dates", "since March, on Monday and yesterday it failed"),
    ("will verb", "Will it sync if I close the app?"),
    ("may verb", "May I ask why it stopped in May?"),
    ("mark verb", "Mark all devices as trusted"),
    ("bare year", "I bought it in 2021"),
    ("age under 90", "I'm 65 and new to watches"),
]


@pytest.mark.parametrize(
    ("kind", "template", "value"),
    DETECTED,
    ids=[f"{kind}-{n}" for n, (kind, _, _) in enumerate(DETECTED)],
)
def test_each_identifier_type_is_detected_with_its_type(
    kind: str, template: str, value: str
) -> None:
    text = template.format(value)
    start = text.index(value)

    result = sanitize(text)

    assert any(s.type == kind and s.start < start + len(value) for s in result.spans)
    assert value not in result.text


@pytest.mark.parametrize(("label", "text"), UNTOUCHED, ids=[u[0] for u in UNTOUCHED])
def test_ordinary_step_sync_text_is_left_untouched(label: str, text: str) -> None:
    result = sanitize(text)

    assert result.text == text
    assert result.spans == ()


def test_identifiers_are_replaced_by_typed_placeholders() -> None:
    result = sanitize("email jenny@example.org or call (617) 555-0198")

    assert result.text == "email [EMAIL] or call [PHONE]"


def test_age_uses_the_short_age_placeholder() -> None:
    result = sanitize("I'm 92 and new here")

    assert result.text == "I'm [AGE] and new here"


def test_counts_report_each_type_without_values() -> None:
    result = sanitize("ssn 123-45-6789, email a.b@example.org, c.d@example.org")

    assert result.counts == {"SSN": 1, "EMAIL": 2}


def test_spans_index_the_original_text() -> None:
    text = "Hi, my name is Sarah Mitchell, DOB 03/14/1962"

    result = sanitize(text)

    assert [text[s.start : s.end] for s in result.spans] == [
        "Sarah Mitchell",
        "03/14/1962",
    ]


def test_result_is_a_frozen_dataclass_of_spans() -> None:
    result = sanitize("call 555-0142")

    assert isinstance(result, SanitizeResult)
    assert result.spans == (Span(5, 13, "PHONE"),)
    with pytest.raises(AttributeError):
        result.text = "x"  # type: ignore[misc]


def test_sanitize_is_deterministic() -> None:
    text = "Jane Doe, 42 Oak Street, Springfield, IL 62704, 555-0142"

    assert sanitize(text) == sanitize(text)


def test_a_longer_span_wins_over_a_contained_shorter_one() -> None:
    result = sanitize("mail 123 Martin Luther King Blvd please")

    assert [s.type for s in result.spans] == ["ADDRESS"]


def test_default_mode_never_blocks() -> None:
    result = sanitize("ssn 123-45-6789")

    assert result.blocked is False
    assert result.blocked_types == ()


def test_strict_mode_blocks_a_critical_type() -> None:
    result = sanitize("ssn 123-45-6789", strict=True)

    assert result.blocked is True
    assert result.blocked_types == ("SSN",)


def test_strict_mode_does_not_block_non_critical_types() -> None:
    result = sanitize("email jenny@example.org", strict=True)

    assert result.blocked is False


def test_strict_mode_honours_custom_critical_types() -> None:
    result = sanitize(
        "email jenny@example.org", strict=True, critical_types=frozenset({"EMAIL"})
    )

    assert result.blocked_types == ("EMAIL",)


def test_default_critical_types_are_the_documented_five() -> None:
    assert frozenset({"SSN", "CREDIT_CARD", "MRN", "LICENSE", "DEVICE_ID"}) == (
        DEFAULT_CRITICAL
    )
    assert DEFAULT_CRITICAL <= PHI_TYPES


def test_empty_text_gives_an_empty_result() -> None:
    result = sanitize("")

    assert result == SanitizeResult("", (), {}, False, ())
