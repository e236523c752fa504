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
AMBIGUOUS_NAMES = _load("ambiguous_names.txt") - NOT_NAMES
FIRST_NAMES = _load("first_names.txt") - NOT_NAMES - AMBIGUOUS_NAMES
SURNAMES = _load("surnames.txt") - NOT_NAMES
_SUFFIX_LINES = _load("street_suffixes.txt")
STREET_SUFFIXES = frozenset(s.rstrip("*") for s in _SUFFIX_LINES)
AMBIGUOUS_SUFFIXES = frozenset(s.rstrip("*") for s in _SUFFIX_LINES if s[-1] == "*")
_STATE_LINES = (_DATA / "us_states.txt").read_text(encoding="utf-8").splitlines()
STATE_CODES = tuple(line.split()[0] for line in _STATE_LINES if line[:1].isalpha())
STATE_NAMES = tuple(
    line.split(maxsplit=1)[1] for line in _STATE_LINES if line[:1].isalpha()
)
