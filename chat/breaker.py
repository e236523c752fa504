"""Circuit breaker for the LLM, shared by every worker process (resilience4j's shape).

States: ``closed`` → ``open`` (after ``failure_threshold`` consecutive failures, or a
failure rate ≥ ``failure_rate_threshold`` % over the last ``window_size`` calls once
``minimum_calls`` were seen) → ``half_open`` after ``open_seconds`` → ``closed`` after
``success_threshold`` successful trial calls, or back to ``open`` on a failed one.
``half_open`` admits at most ``half_open_max_calls`` trial calls at a time. Operators
can also force it ``forced_open`` or ``disabled`` (always admits, records nothing).
Results classified ``ignored`` (4xx other than 429) never count; with
``slow_call_seconds`` > 0, a successful call slower than that counts as a failure.

Sharing: the whole state is one small JSON document in stepsync.sharedstate (database
or Redis), changed only by compare-and-set, so two processes can never both make the
same transition and exactly one transition row is written per change.

Time: processes share no monotonic clock, so the state stores wall-clock epoch
seconds (``opened_at``, ``open_until``). A wall-clock jump cannot keep it open past its
timeout: the open period ends at ``min(open_until, opened_at + open_seconds)`` and a
clock reading before ``opened_at`` (the clock went back) ends it at once. A forward
jump ends it early, which only lets one trial call through. Trial-call slots are
bounded the same way (``probe_lease_seconds``), so a crashed worker cannot hold one.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

from stepsync.sharedstate import SharedStore, default_store

logger = logging.getLogger(__name__)

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
FORCED_OPEN, DISABLED = "forced_open", "disabled"
STATES = (CLOSED, OPEN, HALF_OPEN, FORCED_OPEN, DISABLED)
SUCCESS, FAILURE, IGNORED = "success", "failure", "ignored"
CAS_ATTEMPTS = 64
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


@dataclass(frozen=True)
class BreakerSnapshot:
    """Operator view of one breaker (contract F)."""

    name: str
    state: str
    consecutive_failures: int
    failure_rate: float
    calls_in_window: int
    next_attempt_at: datetime | None
    opened_at: datetime | None
    updated_at: datetime | None


@dataclass
class _State:
    state: str = CLOSED
    failures: int = 0
    successes: int = 0
    window: str = ""
    opened_at: float = 0.0
    open_until: float = 0.0
    probes: dict[str, float] = field(default_factory=dict)
    updated: float = 0.0

    @classmethod
    def load(cls, text: str) -> _State:
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

    def copy(self) -> _State:
        return replace(self, probes=dict(self.probes))


TransitionHook = Callable[..., None]
_Step = tuple["_State | None", Any, str]


def _epoch_to_dt(value: float) -> datetime | None:
    return datetime.fromtimestamp(value, tz=UTC) if value else None


class Breaker:
    """One named breaker over a shared store; all methods are safe across processes."""

    def __init__(
        self,
        name: str = "llm",
        *,
        config: BreakerConfig | None = None,
        store: SharedStore | None = None,
        clock: Callable[[], float] = time.time,
        on_transition: TransitionHook | None = None,
    ) -> None:
        self.name = name
        self.config = config or BreakerConfig.from_settings()
        self.store = store or default_store()
        self.clock = clock
        self.on_transition = on_transition or record_transition
        self.key = f"breaker:{name}"

    # --- time rules --------------------------------------------------------------
    def open_elapsed(self, st: _State, now: float) -> bool:
        """True when the open period is over; a clock that went back ends it."""
        if now < st.opened_at - CLOCK_SLACK_SECONDS:
            return True
        return now >= min(st.open_until, st.opened_at + self.config.open_seconds)

    def _live_probes(self, st: _State, now: float) -> dict[str, float]:
        lease = self.config.probe_lease_seconds
        slack = CLOCK_SLACK_SECONDS
        return {k: v for k, v in st.probes.items() if v - slack <= now < v + lease}

    # --- the CAS loop ------------------------------------------------------------
    def _update(
        self,
        step: Callable[[_State, float], _Step],
        *,
        actor: Any = None,
        request: Any = None,
        default: Any = None,
        always_announce: bool = False,
    ) -> Any:
        for _ in range(CAS_ATTEMPTS):
            current = self.store.read(self.key)
            old = _State.load(current.value)
            now = self.clock()
            new, result, reason = step(old.copy(), now)
            if new is None:
                return result
            new.updated = now
            if self.store.compare_and_set(
                self.key, expected_version=current.version, value=new.dump()
            ):
                if new.state != old.state or always_announce:
                    self._announce(old, new, reason, actor, request)
                return result
        logger.warning("breaker.contention name=%s", self.name)
        return default

    def _announce(
        self, old: _State, new: _State, reason: str, actor: Any, request: Any
    ) -> None:
        next_at = new.open_until if new.state == OPEN else 0.0
        logger.warning(
            "breaker.transition name=%s from=%s to=%s reason=%s failures=%d",
            self.name,
            old.state,
            new.state,
            reason,
            old.failures if new.state != CLOSED else new.failures,
        )
        try:
            self.on_transition(
                name=self.name,
                from_state=old.state,
                to_state=new.state,
                reason=reason,
                consecutive_failures=max(old.failures, new.failures),
                next_attempt_at=_epoch_to_dt(next_at),
                actor=actor,
                request=request,
            )
        except Exception:  # loop boundary: a record failure must not undo the change
            logger.exception("breaker.transition_record_failed name=%s", self.name)

    def _open(self, st: _State, now: float) -> _State:
        st.state, st.successes, st.probes = OPEN, 0, {}
        st.opened_at, st.open_until = now, now + self.config.open_seconds
        return st

    # --- admission -----------------------------------------------------------------
    def allow(self) -> Permit:
        """Admit one call or raise ``BreakerRejected``. Closed state costs one read."""
        cfg = self.config

        def step(st: _State, now: float) -> _Step:
            if st.state in (CLOSED, DISABLED):
                return None, Permit(self.name, st.state), ""
            if st.state == FORCED_OPEN:
                return None, BreakerRejected(st.state, None), ""
            reason = ""
            if st.state == OPEN:
                if not self.open_elapsed(st, now):
                    return None, BreakerRejected(st.state, st.open_until), ""
                went_back = now < st.opened_at - CLOCK_SLACK_SECONDS
                reason = "clock_went_back" if went_back else "open_elapsed"
                st.state, st.successes, st.probes = HALF_OPEN, 0, {}
            probes = self._live_probes(st, now)
            if len(probes) >= cfg.half_open_max_calls:
                if reason:  # record the transition even though no slot is left
                    st.probes = probes
                    return st, BreakerRejected(HALF_OPEN, None), reason
                return None, BreakerRejected(HALF_OPEN, None), ""
            probe_id = secrets.token_hex(6)
            probes[probe_id] = now
            st.probes = probes
            return st, Permit(self.name, HALF_OPEN, probe_id), reason or "probe"

        result = self._update(step, default=BreakerRejected(HALF_OPEN, None))
        if isinstance(result, BreakerRejected):
            raise result
        return result

    # --- results -------------------------------------------------------------------
    def classify(self, outcome: str, duration: float) -> str:
        """Apply the slow-call rule: a slow success counts as a failure."""
        slow = self.config.slow_call_seconds
        if outcome == SUCCESS and slow > 0 and duration > slow:
            return FAILURE
        return outcome

    def record(self, permit: Permit, *, outcome: str, duration: float = 0.0) -> str:
        """Report a permitted call's result (success/failure/ignored); returns the
        state after it. Calls admitted in an earlier state never move a newer one."""
        if permit.state == DISABLED:
            return DISABLED
        kind = self.classify(outcome, duration)
        cfg = self.config

        def step(st: _State, now: float) -> _Step:
            if st.state == HALF_OPEN and permit.probe_id in st.probes:
                st.probes.pop(permit.probe_id)
                if kind == FAILURE:
                    return self._open(st, now), OPEN, "probe_failed"
                if kind == SUCCESS:
                    st.successes += 1
                    if st.successes >= cfg.success_threshold:
                        st.state, st.failures, st.successes, st.window = (
                            CLOSED,
                            0,
                            0,
                            "",
                        )
                        st.opened_at = st.open_until = 0.0
                        return st, CLOSED, "probes_succeeded"
                return st, st.state, ""
            if st.state != CLOSED or permit.state != CLOSED or kind == IGNORED:
                return None, st.state, ""
            mark = "F" if kind == FAILURE else "S"
            st.window = (
                (st.window + mark)[-cfg.window_size :] if cfg.window_size else ""
            )
            st.failures = st.failures + 1 if kind == FAILURE else 0
            if kind == FAILURE and st.failures >= cfg.failure_threshold:
                return self._open(st, now), OPEN, "consecutive_failures"
            if kind == FAILURE and self._rate_exceeded(st.window):
                return self._open(st, now), OPEN, "failure_rate"
            return st, CLOSED, ""

        return str(self._update(step, default=""))

    def _rate_exceeded(self, window: str) -> bool:
        cfg = self.config
        if not window or len(window) < max(cfg.minimum_calls, 1):
            return False
        return 100.0 * window.count("F") / len(window) >= cfg.failure_rate_threshold

    # --- operators and views -----------------------------------------------------
    def set_state(
        self, to_state: str, *, reason: str, actor: Any = None, request: Any = None
    ) -> str:
        """Operator transition (reset/force); returns the previous state."""

        def step(st: _State, now: float) -> _Step:
            previous = st.state
            fresh = _State(state=to_state)
            if to_state == OPEN:
                fresh = self._open(fresh, now)
            return fresh, previous, reason

        return str(
            self._update(
                step, actor=actor, request=request, default="", always_announce=True
            )
        )

    def snapshot(self) -> BreakerSnapshot:
        st = _State.load(self.store.read(self.key).value)
        window = st.window
        rate = 100.0 * window.count("F") / len(window) if window else 0.0
        next_at = st.open_until if st.state == OPEN else 0.0
        return BreakerSnapshot(
            name=self.name,
            state=st.state,
            consecutive_failures=st.failures,
            failure_rate=round(rate, 1),
            calls_in_window=len(window),
            next_attempt_at=_epoch_to_dt(next_at),
            opened_at=_epoch_to_dt(st.opened_at),
            updated_at=_epoch_to_dt(st.updated),
        )


def record_transition(
    *,
    name: str,
    from_state: str,
    to_state: str,
    reason: str,
    consecutive_failures: int,
    next_attempt_at: datetime | None,
    actor: Any = None,
    request: Any = None,
) -> None:
    """Store a BreakerTransition row and audit it (BREAKER_TRANSITION or _ACTION)."""
    from chat.models import BreakerTransition

    BreakerTransition.objects.create(
        name=name,
        from_state=from_state,
        to_state=to_state,
        reason=reason[:32],
        consecutive_failures=consecutive_failures,
        next_attempt_at=next_attempt_at,
        actor=actor if getattr(actor, "pk", None) else None,
    )
    from compliance.models import AuditAction
    from compliance.services import audit_record

    details: dict[str, int | str | bool | list[str]] = {
        "from_state": from_state,
        "to_state": to_state,
        "reason": reason[:32],
        "consecutive_failures": consecutive_failures,
    }
    if actor is not None:
        audit_record(
            action=AuditAction.BREAKER_ACTION,
            actor=actor,
            target_type="breaker",
            target_id=name,
            details=details,
            request=request,
        )
    else:
        audit_record(
            action=AuditAction.BREAKER_TRANSITION,
            system_principal="breaker",
            target_type="breaker",
            target_id=name,
            details=details,
        )


# --- the process-wide breaker and the operator API (contract F) ------------------
def get_breaker(name: str = "llm") -> Breaker:
    """A breaker configured from settings on the default shared store."""
    return Breaker(name)


def breaker_snapshot(name: str = "llm") -> BreakerSnapshot:
    """Current shared state of the breaker, for health, metrics and the admin."""
    return get_breaker(name).snapshot()


def breaker_transitions(*, name: str = "llm", limit: int = 50) -> list[Any]:
    """The newest transition rows (at, from_state, to_state, reason, ...)."""
    from chat.models import BreakerTransition

    return list(BreakerTransition.objects.filter(name=name)[:limit])


_REASON = re.compile(r"[^a-z0-9_]+")


def _reason_code(reason: str, default: str) -> str:
    """Operator reasons are stored as short codes: free text could hold PHI."""
    code = _REASON.sub("_", reason.lower()).strip("_")[:32]
    return code or default


def _operate(
    to_state: str, *, name: str, actor: Any, reason: str, request: Any, default: str
) -> BreakerSnapshot:
    breaker = get_breaker(name)
    breaker.set_state(
        to_state, reason=_reason_code(reason, default), actor=actor, request=request
    )
    return breaker.snapshot()


def breaker_reset(
    *, name: str = "llm", actor: Any, reason: str, request: Any = None
) -> BreakerSnapshot:
    """Back to closed with cleared counters; audited BREAKER_ACTION."""
    return _operate(
        CLOSED,
        name=name,
        actor=actor,
        reason=reason,
        request=request,
        default="operator_reset",
    )


def breaker_force_open(
    *, name: str = "llm", actor: Any, reason: str, request: Any = None
) -> BreakerSnapshot:
    """Reject every call until an operator resets it; audited BREAKER_ACTION."""
    return _operate(
        FORCED_OPEN,
        name=name,
        actor=actor,
        reason=reason,
        request=request,
        default="operator_force_open",
    )


def breaker_force_close(
    *, name: str = "llm", actor: Any, reason: str, request: Any = None
) -> BreakerSnapshot:
    """Closed with cleared counters (from any state); audited BREAKER_ACTION."""
    return _operate(
        CLOSED,
        name=name,
        actor=actor,
        reason=reason,
        request=request,
        default="operator_force_close",
    )


def breaker_disable(
    *, name: str = "llm", actor: Any, reason: str, request: Any = None
) -> BreakerSnapshot:
    """Admit every call and record nothing until reset; audited BREAKER_ACTION."""
    return _operate(
        DISABLED,
        name=name,
        actor=actor,
        reason=reason,
        request=request,
        default="operator_disable",
    )
