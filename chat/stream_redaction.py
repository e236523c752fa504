"""Redaction of a reply while it streams: sanitized text released at sentence ends.

``SanitizingRelay`` holds the model's streamed text until a sentence end (``.``, ``!``
or ``?`` followed by whitespace) or a newline, then hands out that stretch
sanitized. Detectors that need a label ("Member ID: A12345678", "MRN: 00123456")
see it because a stretch never ends at ``:`` or ``;``, and the stretch is sanitized
together with the tail of what was already released, so a label left behind by an
earlier release (a value on the next line) still marks its value. Without a sentence
end for MAX_HELD characters, the text is released at its last space.

The stored reply is sanitized again as a whole (chat.llm_pipeline.llm_draft); for
text whose identifiers do not straddle a release point the relayed concatenation
equals it. When one does, the already-released part cannot be recalled: the rest is
shown redacted, re-sending the context from where the two sanitized forms differ.
"""

from __future__ import annotations

import re

from django.views.decorators.debug import sensitive_variables

from chat import sanitizer

_BOUNDARY = re.compile(r"[.!?](?=\s)|\n")
MAX_HELD = 400
CONTEXT_CHARS = 80


class SanitizingRelay:
    """Feed streamed pieces; get back the sanitized text that may be shown now."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self._pending = ""
        self._context = ""

    @property
    def text(self) -> str:
        """Everything fed so far, unsanitized (for the stored copy, sanitized there)."""
        return "".join(self.parts)

    def feed(self, piece: str) -> str:
        """Add a piece; return the sanitized text now releasable ("" when none)."""
        self.parts.append(piece)
        self._pending += piece
        cut = -1
        for match in _BOUNDARY.finditer(self._pending):
            cut = match.end()
        if cut < 0 and len(self._pending) > MAX_HELD:
            cut = self._pending.rfind(" ") + 1 or len(self._pending)
        return self._release(cut) if cut > 0 else ""

    def flush(self) -> str:
        """Release whatever is held (at the end of the stream)."""
        return self._release(len(self._pending)) if self._pending else ""

    def _release(self, cut: int) -> str:
        head, self._pending = self._pending[:cut], self._pending[cut:]
        shown = _sanitized_after(self._context, head)
        self._context = _tail(self._context + head)
        return shown


@sensitive_variables("context", "head")
def _sanitized_after(context: str, head: str) -> str:
    """The sanitized form of ``head`` as it reads after ``context``."""
    whole = sanitizer.sanitize(context + head)
    if whole.blocked:
        return ""
    if not context:
        return whole.text
    before = sanitizer.sanitize(context)
    prefix = "" if before.blocked else before.text
    if whole.text.startswith(prefix):
        return whole.text[len(prefix) :]
    # An identifier straddles the release point: what was shown cannot be
    # recalled, so show the rest from where the two sanitized forms part.
    pairs = enumerate(zip(prefix, whole.text, strict=False))
    shortest = min(len(prefix), len(whole.text))
    same = next((i for i, (a, b) in pairs if a != b), shortest)
    return whole.text[same:]


def _tail(text: str) -> str:
    """The last CONTEXT_CHARS of ``text``, starting at a word (a label stays whole)."""
    if len(text) <= CONTEXT_CHARS:
        return text
    tail = text[-CONTEXT_CHARS:]
    space = re.search(r"\s", tail)
    return tail[space.end() :] if space else tail
