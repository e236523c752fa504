"""Text normalisation for PHI detection, with a map back to original offsets."""

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

# Default-ignorable code points (Unicode DerivedCoreProperties) that are not in
# category Cf: combining grapheme joiner, Hangul fillers, Khmer inherent vowels,
# Mongolian free variation selectors, variation selectors and the unassigned
# reserved ranges. Every Cf character is stripped as well (see _fold_char).
_IGNORABLE_RANGES = (
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)
# NFKC leaves these as non-ASCII dashes (U+2011 even becomes U+2010), so fold them.
_DASHES = frozenset("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d")
_CONFUSABLES_FILE = Path(__file__).resolve().parent / "phi_data" / "confusables.txt"


def _load_confusables(path: Path) -> dict[str, str]:
    """Read ``U+XXXX  <ascii letter>  <name>`` lines into {character: letter}."""
    table: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        code, letter = line.split()[:2]
        if not (code.startswith("U+") and len(letter) == 1 and letter.isascii()):
            raise ValueError(f"bad confusables line: {code}")
        table[chr(int(code[2:], 16))] = letter
    return table


# Cyrillic, Greek and other letters that pass for ASCII ones (a reviewable table).
CONFUSABLES = _load_confusables(_CONFUSABLES_FILE)
_CONFUSABLE_CHAR = re.compile("[" + re.escape("".join(CONFUSABLES)) + "]")
_FOLD_CONFUSABLES = str.maketrans(CONFUSABLES)
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
# Letters and digits: the unit within which look-alikes are folded or kept.
_WORD = re.compile(r"[^\W_]+")


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


def is_ignorable(char: str) -> bool:
    """True for format (Cf) and other default-ignorable (invisible) characters."""
    if unicodedata.category(char) == "Cf":
        return True
    point = ord(char)
    return any(low <= point <= high for low, high in _IGNORABLE_RANGES)


@lru_cache(maxsize=8192)
def _fold_char(char: str) -> str:
    """Return the ASCII-leaning replacement for one non-ASCII character.

    Look-alike letters come back unchanged: whether to fold them depends on the
    word around them (see _fold_confusables).
    """
    if is_ignorable(char):
        return ""
    if char in _DASHES:
        return "-"
    if char in CONFUSABLES:
        return char
    digit = unicodedata.decimal(char, None)
    if digit is not None:
        return str(digit)
    folded = unicodedata.normalize("NFKC", char)
    if folded == char:
        return char
    return "".join(
        "-" if c in _DASHES else _fold_char(c) if not c.isascii() else c for c in folded
    )


@lru_cache(maxsize=8192)
def _is_mark(char: str) -> bool:
    return unicodedata.category(char)[0] == "M"


def _fold_confusables(text: str) -> str:
    """Fold look-alike letters in words that mix them with ASCII, or are all
    look-alikes ("MRN-C\u0410NARY", "\u0435xample.org"); other words keep them."""
    chars: list[str] | None = None
    for word in _WORD.finditer(text):
        value = word.group()
        if not _CONFUSABLE_CHAR.search(value):
            continue
        if any(c.isascii() for c in value) or all(c in CONFUSABLES for c in value):
            if chars is None:
                chars = list(text)
            chars[word.start() : word.end()] = value.translate(_FOLD_CONFUSABLES)
    return text if chars is None else "".join(chars)


def lowercase(text: str) -> str:
    """``text.lower()`` with exactly one character per input character, so offsets
    found in it hold for ``text`` ("\u0130".lower() is two characters long)."""
    lower = text.lower()
    if len(lower) == len(text):
        return lower
    return "".join(low if len(low := c.lower()) == 1 else c for c in text)


def normalize(text: str) -> Normalized:
    """Fold width, digits, dashes, look-alikes and invisible characters; keep an
    offset map.

    Normalisation is per character so that every output character can be traced
    to exactly one input character (whole-string NFKC may merge characters).
    Combining marks after an ASCII character or a look-alike letter are dropped
    (NFKD-then-strip), so "1\u0301" reads as "1" and "e\u0301" as "e".
    """
    if text.isascii():
        return Normalized(text, None, len(text))
    out: list[str] = []
    origin: list[int] = []
    position = 0
    last = ""  # the last output character ("" counts as ASCII)
    for match in _NON_ASCII.finditer(text):
        index = match.start()
        if index > position:  # copy the ASCII run before this character
            out.append(text[position:index])
            origin.extend(range(position, index))
            last = text[index - 1]
        position = index + 1
        char = text[index]
        if _is_mark(char) and (last.isascii() or last in CONFUSABLES):
            continue
        folded = _fold_char(char)
        if folded:
            out.append(folded)
            origin.extend([index] * len(folded))
            last = folded[-1]
    out.append(text[position:])
    origin.extend(range(position, len(text)))
    joined = "".join(out)
    if _CONFUSABLE_CHAR.search(joined):
        joined = _fold_confusables(joined)
    return Normalized(joined, tuple(origin), len(text))
