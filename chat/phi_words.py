"""Word lists for PHI detection, loaded once at import from chat/phi_data/."""

from pathlib import Path

_DATA = Path(__file__).resolve().parent / "phi_data"


def _load(name: str) -> frozenset[str]:
    """Read one lowercase word per line, skipping blanks and '#' comments."""
    lines = (_DATA / name).read_text(encoding="utf-8").splitlines()
    return frozenset(
        line.strip().lower() for line in lines if line.strip() and line[0] != "#"
    )


NOT_NAMES = _load("not_names.txt")
# The curated lists; lowercase words are only trusted as names when listed here,
# since the international lists also hold English words ("said", "young").
FIRST_NAMES_CORE = _load("first_names.txt") - NOT_NAMES - _load("ambiguous_names.txt")
SURNAMES_CORE = _load("surnames.txt") - NOT_NAMES
AMBIGUOUS_NAMES = (
    _load("ambiguous_names.txt") | _load("ambiguous_names_intl.txt")
) - NOT_NAMES
FIRST_NAMES = (
    (_load("first_names.txt") | _load("first_names_intl.txt"))
    - NOT_NAMES
    - AMBIGUOUS_NAMES
)
SURNAMES = (_load("surnames.txt") | _load("surnames_intl.txt")) - NOT_NAMES
# Nouns that turn a capitalised name-like run into a place ("Arthur's Seat",
# "Victoria Island") and words that start place names ("Lake Mayra", "St. Luke").
PLACE_NOUNS = _load("place_nouns.txt")
PLACE_PREFIXES = frozenset(
    (
        "lake",
        "mount",
        "mt",
        "port",
        "fort",
        "ft",
        "cape",
        "saint",
        "st",
        "san",
        "santa",
        "glen",
        "point",
        "camp",
        "isle",
        "loch",
        "la",
        "los",
        "las",
        "el",
        "new",
        "north",
        "south",
        "east",
        "west",
        "upper",
        "lower",
        "great",
        "little",
    )
)
_SUFFIX_LINES = _load("street_suffixes.txt")
STREET_SUFFIXES = frozenset(s.rstrip("*") for s in _SUFFIX_LINES)
AMBIGUOUS_SUFFIXES = frozenset(s.rstrip("*") for s in _SUFFIX_LINES if s[-1] == "*")
_STATE_LINES = (_DATA / "us_states.txt").read_text(encoding="utf-8").splitlines()
STATE_CODES = tuple(line.split()[0] for line in _STATE_LINES if line[:1].isalpha())
STATE_NAMES = tuple(
    line.split(maxsplit=1)[1] for line in _STATE_LINES if line[:1].isalpha()
)
