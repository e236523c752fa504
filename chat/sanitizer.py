"""PHI sanitizer: normalise text, detect identifiers, then redact or block them.

Pure Python, no Django, no I/O after import, deterministic and thread-safe (patterns
and word lists are compiled once at import; nothing shared is mutated).

Public API
----------
``sanitize(text, *, strict=False, critical_types=DEFAULT_CRITICAL) -> SanitizeResult``
    Redacts every detected identifier with a typed placeholder (``[EMAIL]``,
    ``[PHONE]``, ``[NAME]``, ``[AGE]`` ...). ``spans`` hold offsets into the ORIGINAL
    text. In strict mode ``blocked`` is True when a critical type was found. Never
    raises: an internal error returns ``blocked=True`` with type ``SANITIZER_ERROR``
    and a fixed placeholder text (fail closed).
``sanitize_or_raise(text, *, strict=True, critical_types=DEFAULT_CRITICAL)``
    Same, but raises ``PHIDetectedException`` when blocked and ``SanitizerError`` on
    an internal error. Neither exception carries any part of the input.
``SanitizeResult``, ``Span``, ``PHIDetectedException``, ``SanitizerError``,
``PHI_TYPES`` (all detectable types), ``DEFAULT_CRITICAL`` (types that block).

PHI handling: results and exceptions expose types, counts and offsets only; the
sanitized text contains placeholders instead of the matched values.
"""

from dataclasses import dataclass
from types import MappingProxyType

from chat import phi_address, phi_dates, phi_names, phi_patterns
from chat.phi_normalize import lowercase, normalize

__all__ = [
    "DEFAULT_CRITICAL",
    "PHI_TYPES",
    "PHIDetectedException",
    "SanitizeResult",
    "SanitizerError",
    "Span",
    "sanitize",
    "sanitize_or_raise",
]

# Higher wins when two candidates of equal length overlap.
_PRIORITY = MappingProxyType(
    {
        "CREDIT_CARD": 15,
        "SSN": 14,
        "EMAIL": 13,
        "URL": 12,
        "IP": 11,
        "DEVICE_ID": 10,
        "MRN": 9,
        "LICENSE": 8,
        "VEHICLE": 7,
        "PHONE": 6,
        "DATE": 5,
        "ZIP": 4,
        "ADDRESS": 3,
        "AGE_OVER_89": 2,
        "NAME": 1,
    }
)
PHI_TYPES: frozenset[str] = frozenset(_PRIORITY)
DEFAULT_CRITICAL: frozenset[str] = frozenset(
    {"SSN", "CREDIT_CARD", "MRN", "LICENSE", "DEVICE_ID"}
)
ERROR_TYPE = "SANITIZER_ERROR"
ERROR_TEXT = "[SANITIZER_ERROR]"
_PLACEHOLDER = MappingProxyType(
    {kind: "[AGE]" if kind == "AGE_OVER_89" else f"[{kind}]" for kind in PHI_TYPES}
)


@dataclass(frozen=True)
class Span:
    """One detected identifier: half-open offsets into the original text."""

    start: int
    end: int
    type: str


@dataclass(frozen=True)
class SanitizeResult:
    """Sanitized text plus what was found (types, counts, offsets; never values)."""

    text: str
    spans: tuple[Span, ...]
    counts: dict[str, int]
    blocked: bool
    blocked_types: tuple[str, ...]


class PHIDetectedException(Exception):
    """Strict mode found critical identifiers; carries only their types and counts."""

    def __init__(self, types: tuple[str, ...], counts: dict[str, int]) -> None:
        super().__init__("PHI detected: " + ", ".join(types))
        self.types = types
        self.counts = dict(counts)


class SanitizerError(Exception):
    """The sanitizer failed internally; the message was blocked (fail closed)."""

    def __init__(self) -> None:
        super().__init__("sanitizer failed; message blocked")


def sanitize(
    text: str,
    *,
    strict: bool = False,
    critical_types: frozenset[str] = DEFAULT_CRITICAL,
) -> SanitizeResult:
    """Redact identifiers in ``text``; in strict mode also flag critical types.

    Returns a SanitizeResult whose spans index the original ``text``. Never raises:
    any internal failure yields ``blocked=True``, ``blocked_types=("SANITIZER_ERROR",)``
    and a fixed placeholder text, so no input escapes through an error path.
    """
    try:
        return _sanitize(text, strict, critical_types)
    except Exception:  # Fail closed: the error may hold input, so drop it.
        return SanitizeResult(ERROR_TEXT, (), {ERROR_TYPE: 1}, True, (ERROR_TYPE,))


def sanitize_or_raise(
    text: str,
    *,
    strict: bool = True,
    critical_types: frozenset[str] = DEFAULT_CRITICAL,
) -> SanitizeResult:
    """Like ``sanitize`` (strict by default) but raise instead of returning blocked.

    Raises SanitizerError on an internal failure and PHIDetectedException when a
    critical type is present; both hold fixed text, types and counts only.
    """
    result = sanitize(text, strict=strict, critical_types=critical_types)
    if ERROR_TYPE in result.blocked_types:
        raise SanitizerError() from None
    if result.blocked:
        counts = {kind: result.counts[kind] for kind in result.blocked_types}
        raise PHIDetectedException(result.blocked_types, counts) from None
    return result


def _sanitize(
    text: str, strict: bool, critical_types: frozenset[str]
) -> SanitizeResult:
    if not isinstance(text, str):
        raise TypeError("text must be str")
    norm = normalize(text)
    candidates = _detect(norm.text)
    spans = tuple(
        Span(*norm.to_original(start, end), kind)
        for start, end, kind in _resolve(candidates)
    )
    counts: dict[str, int] = {}
    for span in spans:
        counts[span.type] = counts.get(span.type, 0) + 1
    blocked_types = tuple(sorted(k for k in counts if k in critical_types))
    return SanitizeResult(
        _redact(text, spans),
        spans,
        counts,
        strict and bool(blocked_types),
        blocked_types if strict else (),
    )


def _detect(text: str) -> list[tuple[int, int, str]]:
    # Module attribute lookups (not bound references) so tests can patch detectors.
    lower = lowercase(text)
    found = phi_patterns.detect(text, lower)
    found.extend(phi_dates.detect(text, lower))
    found.extend(phi_address.detect(text, lower))
    found.extend(phi_names.detect(text))
    return found


def _resolve(candidates: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Pick non-overlapping spans: longer first, then higher priority, then earlier.

    A loser that only partly overlaps a winner widens the winner, so no fragment
    of any detected identifier is left in the text.
    """
    ordered = sorted(
        {c for c in candidates if c[1] > c[0]},
        key=lambda c: (c[0] - c[1], -_PRIORITY[c[2]], c[0], c[2]),
    )
    accepted: list[tuple[int, int, str]] = []
    for start, end, kind in ordered:
        hits = [a for a in accepted if a[0] < end and start < a[1]]
        if not hits:
            accepted.append((start, end, kind))
            continue
        low = min(start, *(h[0] for h in hits))
        high = max(end, *(h[1] for h in hits))
        accepted = [a for a in accepted if a not in hits]
        accepted.append((low, high, hits[0][2]))
    return sorted(accepted)


def _redact(text: str, spans: tuple[Span, ...]) -> str:
    parts: list[str] = []
    position = 0
    for span in spans:
        parts.append(text[position : span.start])
        parts.append(_PLACEHOLDER[span.type])
        position = span.end
    parts.append(text[position:])
    return "".join(parts)
