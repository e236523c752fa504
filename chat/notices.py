"""User-facing notice texts of the web UI: identifier types and counts, never values.

static/js/chat.js builds the same sentences from ``phi_labels()`` (handed to the page
as JSON), so the no-JavaScript page and the enhanced page read the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

# type -> (singular, plural); unknown types fall back to a generic label.
PHI_LABELS: dict[str, tuple[str, str]] = {
    "EMAIL": ("e-mail address", "e-mail addresses"),
    "PHONE": ("phone number", "phone numbers"),
    "SSN": ("Social Security number", "Social Security numbers"),
    "CREDIT_CARD": ("payment card number", "payment card numbers"),
    "MRN": ("medical record number", "medical record numbers"),
    "LICENSE": ("licence number", "licence numbers"),
    "DEVICE_ID": ("device identifier", "device identifiers"),
    "VEHICLE": ("vehicle identifier", "vehicle identifiers"),
    "URL": ("web address", "web addresses"),
    "IP": ("IP address", "IP addresses"),
    "DATE": ("date", "dates"),
    "ZIP": ("ZIP code", "ZIP codes"),
    "ADDRESS": ("street address", "street addresses"),
    "AGE_OVER_89": ("age over 89", "ages over 89"),
    "NAME": ("name", "names"),
    "SANITIZER_ERROR": ("possible identifier", "possible identifiers"),
}
GENERIC_LABEL = ("identifier", "identifiers")
FALLBACK_NOTICE = (
    "Answered by the built-in troubleshooting guide because the AI service is "
    "unavailable"
)
INCOMPLETE_NOTICE = "This reply was interrupted and may be incomplete."
CLOSED_NOTICE = (
    "This conversation has ended because it was inactive for a while. "
    "Send a message to continue in a new conversation."
)


def phi_labels() -> dict[str, list[str]]:
    """The label table for the page's JavaScript."""
    labels = {kind: list(pair) for kind, pair in PHI_LABELS.items()}
    labels["*"] = list(GENERIC_LABEL)
    return labels


def _join(parts: list[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def redaction_notice(redactions: Mapping[str, int]) -> str:
    """'We removed 1 e-mail address and 2 phone numbers before saving your message'."""
    parts = []
    for kind, count in sorted(redactions.items()):
        if int(count) <= 0:
            continue
        singular, plural = PHI_LABELS.get(kind, GENERIC_LABEL)
        parts.append(f"{int(count)} {singular if int(count) == 1 else plural}")
    if not parts:
        return ""
    return f"We removed {_join(parts)} before saving your message"


def blocked_notice(types: Iterable[str]) -> str:
    """'Your message was not sent because it contained: Social Security number'."""
    labels = []
    for kind in types:
        label = PHI_LABELS.get(kind, GENERIC_LABEL)[0]
        if label not in labels:
            labels.append(label)
    return (
        "Your message was not sent because it contained: "
        + ", ".join(labels or [GENERIC_LABEL[0]])
        + ". Please remove it and try again."
    )


def rate_limit_notice(retry_after: int | None) -> str:
    """'You're sending messages too quickly — try again in N seconds'."""
    if not retry_after or retry_after <= 0:
        return "You're sending messages too quickly — try again in a moment"
    unit = "second" if retry_after == 1 else "seconds"
    return f"You're sending messages too quickly — try again in {retry_after} {unit}"
