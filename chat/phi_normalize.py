"""Text normalisation for PHI detection, with a map back to original offsets."""

import unicodedata
from dataclasses import dataclass

# Characters that hide inside identifiers without changing how they look.
_INVISIBLE = frozenset("\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e\u2061\u2062\u2063")
# NFKC leaves these as non-ASCII dashes (U+2011 even becomes U+2010), so fold them.
_DASHES = frozenset("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d")
# Latin look-alikes used to dodge e-mail/domain patterns (Cyrillic and Greek).
_CONFUSABLES = {
    "\u0430": "a",
    "\u0435": "e",
    "\u043e": "o",
    "\u0440": "p",
    "\u0441": "c",
    "\u0445": "x",
    "\u0443": "y",
    "\u0456": "i",
    "\u0458": "j",
    "\u0455": "s",
    "\u0501": "d",
    "\u03bf": "o",
    "\u03b1": "a",
    "\u03bd": "v",
    "\u0391": "A",
    "\u0412": "B",
    "\u0415": "E",
    "\u041a": "K",
    "\u041c": "M",
    "\u041d": "H",
    "\u041e": "O",
    "\u0420": "P",
    "\u0421": "C",
    "\u0422": "T",
    "\u0425": "X",
}


@dataclass(frozen=True)
class Normalized:
    """Normalised text plus, for each of its characters, the original index."""

    text: str
    origin: tuple[int, ...] | None  # None means identity (pure ASCII input)
    original_length: int

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """Map a half-open span of the normalised text to the original text."""
        if self.origin is None:
            return start, end
        if start >= len(self.origin):
            return self.original_length, self.original_length
        return self.origin[start], self.origin[end - 1] + 1


def _fold_char(char: str) -> str:
    """Return the ASCII-leaning replacement for one non-ASCII character."""
    if char in _INVISIBLE:
        return ""
    if char in _DASHES:
        return "-"
    if char in _CONFUSABLES:
        return _CONFUSABLES[char]
    digit = unicodedata.decimal(char, None)
    if digit is not None:
        return str(digit)
    folded = unicodedata.normalize("NFKC", char)
    if any(c in _DASHES for c in folded):
        folded = "".join("-" if c in _DASHES else c for c in folded)
    if any(c in _INVISIBLE for c in folded):
        folded = "".join(c for c in folded if c not in _INVISIBLE)
    return folded


def normalize(text: str) -> Normalized:
    """Fold width, digits, dashes and invisible characters; keep an offset map.

    Normalisation is per character so that every output character can be traced
    to exactly one input character (whole-string NFKC may merge characters).
    """
    if text.isascii():
        return Normalized(text, None, len(text))
    out: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        folded = char if char.isascii() else _fold_char(char)
        out.append(folded)
        origin.extend([index] * len(folded))
    return Normalized("".join(out), tuple(origin), len(text))
