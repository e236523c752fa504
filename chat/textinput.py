"""Validation and cleaning of user-typed text before it reaches the sanitizer.

Rejects what cannot be stored or means a broken client (non-strings, NUL, lone
surrogates, empty, too long); removes what is only there to mislead a reader or a
terminal (ANSI escapes, other control characters, bidi overrides, combining floods).
Error reasons are fixed codes; no part of the text ever reaches an exception.
"""

from __future__ import annotations

import re
import unicodedata

from chat.exceptions import MessageInvalid

ANSI_ESCAPE = re.compile(
    r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|.)?"
)
# C0 except tab and newline, DEL, C1; bidi embeddings/overrides/isolates and marks.
STRIPPED = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]"
)
SURROGATE = re.compile("[\ud800-\udfff]")
MAX_COMBINING_RUN = 3


def _cap_combining(text: str) -> str:
    out: list[str] = []
    run = 0
    for char in text:
        run = run + 1 if unicodedata.combining(char) else 0
        if run <= MAX_COMBINING_RUN:
            out.append(char)
    return "".join(out)


def clean_user_text(value: object, *, max_chars: int, field: str = "text") -> str:
    """Return ``value`` cleaned for storage; raise MessageInvalid with a fixed reason.

    Reasons: ``type`` (not a string), ``nul``, ``encoding`` (lone surrogate),
    ``empty`` (nothing left after cleaning), ``too_long`` (over ``max_chars``).
    """
    if not isinstance(value, str):
        raise MessageInvalid("type", field)
    if len(value) > 4 * max_chars:  # cleaning cannot bring this under the limit
        raise MessageInvalid("too_long", field)
    if "\x00" in value:
        raise MessageInvalid("nul", field)
    if SURROGATE.search(value):
        raise MessageInvalid("encoding", field)
    text = value.replace("\r\n", "\n").replace("\r", "\n")
    text = ANSI_ESCAPE.sub("", text)
    text = STRIPPED.sub("", text)
    text = _cap_combining(text).strip()
    if not text:
        raise MessageInvalid("empty", field)
    if len(text) > max_chars:
        raise MessageInvalid("too_long", field)
    return text
