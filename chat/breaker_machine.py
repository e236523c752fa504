"""The circuit breaker's state machine: its shared document and pure transitions.

States: ``closed`` → ``open`` (after ``failure_threshold`` consecutive failures, or a
failure rate ≥ ``failure_rate_threshold`` % over the last ``window_size`` calls once
``minimum_calls`` were seen) → ``half_open`` after ``open_seconds`` → ``closed`` after
``success_threshold`` successful trial calls, or back to ``open`` on a failed one.
``half_open`` admits at most ``half_open_max_calls`` trial calls at a time. Operators
can also force it ``forced_open`` or ``disabled`` (always admits, records nothing).
Results classified ``ignored`` (4xx other than 429) never count; with
``slow_call_seconds`` > 0, a successful call slower than that counts as a failure.

Each transition is a function ``(state, now) -> (new state or None, result,
reason)``: no I/O, no clock of its own. chat.breaker runs them under compare-and-set
on the shared store.

Time: processes share no monotonic clock, so the state stores wall-clock epoch
seconds (``opened_at``, ``open_until``). A wall-clock jump cannot keep it open past
its timeout: a clock reading before ``opened_at`` (the clock went back) ends the open
period at once, and a forward jump ends it early, which only lets one trial call
through. Trial-call slots are bounded the same way (``probe_lease_seconds``), so a
crashed worker cannot hold one.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field, replace
from typing import Any

from django.conf import settings

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
FORCED_OPEN, DISABLED = "forced_open", "disabled"
STATES = (CLOSED, OPEN, HALF_OPEN, FORCED_OPEN, DISABLED)
SUCCESS, FAILURE, IGNORED = "success", "failure", "ignored"
# Workers on different hosts disagree by a little; a clock only "went back" when it
# reads earlier than opened_at by more than this.
CLOCK_SLACK_SECONDS = 5.0


class BreakerRejected(Exception):
    """The breaker refused the call (code ``breaker_open``); carries no content."""

    def __init__(self, state: str, next_attempt_at: float | None) -> None:
        super().__init__("breaker_open")
        self.code = "breaker_open"
        self.state = state
        self.next_attempt_at = next_attempt_at


@dataclass(frozen=True)
class BreakerConfig:
    """Thresholds; ``from_settings()`` reads the CIRCUIT_BREAKER_* settings."""

    failure_threshold: int = 5
    success_threshold: int = 2
    open_seconds: float = 60.0
    window_size: int = 20
    minimum_calls: int = 10
    failure_rate_threshold: float = 50.0
    slow_call_seconds: float = 0.0
    half_open_max_calls: int = 1
    probe_lease_seconds: float = 120.0

    @classmethod
    def from_settings(cls) -> BreakerConfig:
        return cls(
            failure_threshold=settings.CIRCUIT_BREAKER_FAILURE_THRESHOLD,
            success_threshold=settings.CIRCUIT_BREAKER_SUCCESS_THRESHOLD,
            open_seconds=float(settings.CIRCUIT_BREAKER_TIMEOUT_SECONDS),
            window_size=settings.CIRCUIT_BREAKER_WINDOW_SIZE,
            minimum_calls=settings.CIRCUIT_BREAKER_MINIMUM_CALLS,
            failure_rate_threshold=settings.CIRCUIT_BREAKER_FAILURE_RATE_THRESHOLD,
            slow_call_seconds=settings.CIRCUIT_BREAKER_SLOW_CALL_SECONDS,
            half_open_max_calls=settings.CIRCUIT_BREAKER_HALF_OPEN_MAX_CALLS,
            probe_lease_seconds=settings.LLM_DEADLINE_SECONDS + 30.0,
        )


@dataclass(frozen=True)
class Permit:
    """Admission ticket from ``allow()``; hand it back to ``record()``."""

    name: str
    state: str
    probe_id: str = ""


@dataclass
class BreakerState:
    """The shared document: state, counters, window ("SFFS..."), times, probes."""

    state: str = CLOSED
    failures: int = 0
    successes: int = 0
    window: str = ""
    opened_at: float = 0.0
    open_until: float = 0.0
    probes: dict[str, float] = field(default_factory=dict)
    updated: float = 0.0

    @classmethod
    def load(cls, text: str) -> BreakerState:
        if not text:
            return cls()
        raw = json.loads(text)
        state = raw.get("s", CLOSED)
        return cls(
            state=state if state in STATES else CLOSED,
            failures=int(raw.get("cf", 0)),
            successes=int(raw.get("cs", 0)),
            window=str(raw.get("w", "")),
            opened_at=float(raw.get("oa", 0.0)),
            open_until=float(raw.get("ou", 0.0)),
            probes={str(k): float(v) for k, v in raw.get("p", {}).items()},
            updated=float(raw.get("u", 0.0)),
        )

    def dump(self) -> str:
        doc = {
            "s": self.state,
            "cf": self.failures,
            "cs": self.successes,
            "w": self.window,
            "oa": self.opened_at,
            "ou": self.open_until,
            "p": self.probes,
            "u": self.updated,
        }
        return json.dumps(doc, separators=(",", ":"))

    def copy(self) -> BreakerState:
        return replace(self, probes=dict(self.probes))


# (new state, or None when nothing changes; the caller's result; transition reason)
Step = tuple[BreakerState | None, Any, str]


def clock_went_back(st: BreakerState, now: float) -> bool:
    return now < st.opened_at - CLOCK_SLACK_SECONDS


def open_elapsed(st: BreakerState, now: float) -> bool:
    """True when the open period is over; a clock that went back ends it."""
    return clock_went_back(st, now) or now >= st.open_until


def live_probes(st: BreakerState, now: float, cfg: BreakerConfig) -> dict[str, float]:
    """Trial calls still holding a slot (leases end; a clock jump frees them)."""
    lease, slack = cfg.probe_lease_seconds, CLOCK_SLACK_SECONDS
    return {k: v for k, v in st.probes.items() if v - slack <= now < v + lease}


def opened(st: BreakerState, now: float, cfg: BreakerConfig) -> BreakerState:
    st.state, st.successes, st.probes = OPEN, 0, {}
    st.opened_at, st.open_until = now, now + cfg.open_seconds
    return st


def classify(outcome: str, duration: float, cfg: BreakerConfig) -> str:
    """Apply the slow-call rule: a slow success counts as a failure."""
    slow = cfg.slow_call_seconds
    if outcome == SUCCESS and slow > 0 and duration > slow:
        return FAILURE
    return outcome


def rate_exceeded(window: str, cfg: BreakerConfig) -> bool:
    if not window or len(window) < max(cfg.minimum_calls, 1):
        return False
    return 100.0 * window.count("F") / len(window) >= cfg.failure_rate_threshold


def admit(st: BreakerState, now: float, cfg: BreakerConfig, name: str) -> Step:
    """allow(): a Permit, or a BreakerRejected to raise (as the result)."""
    if st.state in (CLOSED, DISABLED):
        return None, Permit(name, st.state), ""
    if st.state == FORCED_OPEN:
        return None, BreakerRejected(st.state, None), ""
    reason = ""
    if st.state == OPEN:
        if not open_elapsed(st, now):
            return None, BreakerRejected(st.state, st.open_until), ""
        reason = "clock_went_back" if clock_went_back(st, now) else "open_elapsed"
        st.state, st.successes, st.probes = HALF_OPEN, 0, {}
    probes = live_probes(st, now, cfg)
    if len(probes) >= cfg.half_open_max_calls:
        if reason:  # record the transition even though no slot is left
            st.probes = probes
            return st, BreakerRejected(HALF_OPEN, None), reason
        return None, BreakerRejected(HALF_OPEN, None), ""
    probe_id = secrets.token_hex(6)
    probes[probe_id] = now
    st.probes = probes
    return st, Permit(name, HALF_OPEN, probe_id), reason or "probe"


def report(
    st: BreakerState, now: float, cfg: BreakerConfig, permit: Permit, kind: str
) -> Step:
    """record(): apply one classified result; the result is the state after it.

    A trial call's result moves half-open; a closed-state result moves the counters
    only while still closed (calls admitted in an earlier state never move a newer
    one). ``ignored`` frees a trial slot and counts nothing.
    """
    if st.state == HALF_OPEN and permit.probe_id in st.probes:
        st.probes.pop(permit.probe_id)
        if kind == FAILURE:
            return opened(st, now, cfg), OPEN, "probe_failed"
        if kind == SUCCESS:
            st.successes += 1
            if st.successes >= cfg.success_threshold:
                closed = BreakerState(state=CLOSED, probes={})
                return closed, CLOSED, "probes_succeeded"
        return st, st.state, ""
    if st.state != CLOSED or permit.state != CLOSED or kind == IGNORED:
        return None, st.state, ""
    mark = "F" if kind == FAILURE else "S"
    if kind == SUCCESS and st.failures == 0 and _saturated(st.window, mark, cfg):
        # A healthy breaker stays as it is: no write on the shared hot document.
        return None, CLOSED, ""
    st.window = (st.window + mark)[-cfg.window_size :] if cfg.window_size else ""
    st.failures = st.failures + 1 if kind == FAILURE else 0
    if kind == FAILURE and st.failures >= cfg.failure_threshold:
        return opened(st, now, cfg), OPEN, "consecutive_failures"
    if kind == FAILURE and rate_exceeded(st.window, cfg):
        return opened(st, now, cfg), OPEN, "failure_rate"
    return st, CLOSED, ""


def _saturated(window: str, mark: str, cfg: BreakerConfig) -> bool:
    """True when appending ``mark`` leaves the window as it is (full of ``mark``)."""
    if not cfg.window_size:
        return window == ""
    return len(window) == cfg.window_size and window.count(mark) == len(window)


def operator_set(
    st: BreakerState, now: float, cfg: BreakerConfig, to_state: str, reason: str
) -> Step:
    """An operator's transition: a fresh document in ``to_state``; the result is the
    previous state."""
    fresh = BreakerState(state=to_state)
    if to_state == OPEN:
        fresh = opened(fresh, now, cfg)
    return fresh, st.state, reason
