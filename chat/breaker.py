"""The LLM circuit breaker over shared state, and its operator API (contract F).

The rules (closed / open / half-open, forced-open and disabled for operators) live in
chat.breaker_machine as pure transitions; this module runs them against the shared
store and records what changed.

Sharing: the whole state is one small JSON document in stepsync.sharedstate (database
or Redis), changed only by compare-and-set, so two processes can never both make the
same transition and exactly one transition row is written per change. Every
transition is stored as a BreakerTransition row and audited, with the consecutive
failures and the next attempt time. When the shared store is unreachable,
``allow()`` refuses (fail closed: the user gets the rules fallback) and ``record()``
gives up quietly (trial slots and counters heal by their leases).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import transaction

from chat.breaker_machine import (
    CLOSED,
    DISABLED,
    FAILURE,
    FORCED_OPEN,
    HALF_OPEN,
    IGNORED,
    OPEN,
    STATES,
    SUCCESS,
    BreakerConfig,
    BreakerRejected,
    BreakerState,
    Permit,
    Step,
    admit,
    classify,
    operator_set,
    report,
)
from stepsync.sharedstate import SharedStateUnavailable, SharedStore, default_store

__all__ = [
    "CLOSED",
    "DISABLED",
    "FAILURE",
    "FORCED_OPEN",
    "HALF_OPEN",
    "IGNORED",
    "OPEN",
    "STATES",
    "SUCCESS",
    "Breaker",
    "BreakerConfig",
    "BreakerRejected",
    "BreakerSnapshot",
    "Permit",
    "breaker_disable",
    "breaker_force_close",
    "breaker_force_open",
    "breaker_reset",
    "breaker_snapshot",
    "breaker_transitions",
    "get_breaker",
    "record_transition",
]

logger = logging.getLogger(__name__)

CAS_ATTEMPTS = 64


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


TransitionHook = Callable[..., None]


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

    # --- the CAS loop ------------------------------------------------------------
    def _update(
        self,
        step: Callable[[BreakerState, float], Step],
        *,
        actor: Any = None,
        request: Any = None,
        default: Any = None,
        always_announce: bool = False,
    ) -> Any:
        for _ in range(CAS_ATTEMPTS):
            current = self.store.read(self.key)
            old = BreakerState.load(current.value)
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
        self,
        old: BreakerState,
        new: BreakerState,
        reason: str,
        actor: Any,
        request: Any,
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
            # Its own savepoint: inside a caller's transaction, a failed record must
            # neither undo the change nor poison that transaction.
            with transaction.atomic():
                self._record(old, new, reason, next_at, actor, request)
        except Exception:  # loop boundary: a record failure must not undo the change
            logger.exception("breaker.transition_record_failed name=%s", self.name)

    def _record(
        self,
        old: BreakerState,
        new: BreakerState,
        reason: str,
        next_at: float,
        actor: Any,
        request: Any,
    ) -> None:
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

    # --- admission and results -----------------------------------------------------
    def allow(self) -> Permit:
        """Admit one call or raise ``BreakerRejected``. Closed state costs one read.

        Raises SharedStateUnavailable when the shared store cannot be reached (the
        caller fails closed)."""
        result = self._update(
            lambda st, now: admit(st, now, self.config, self.name),
            default=BreakerRejected(HALF_OPEN, None),
        )
        if isinstance(result, BreakerRejected):
            raise result
        return result

    def record(self, permit: Permit, *, outcome: str, duration: float = 0.0) -> str:
        """Report a permitted call's result (success/failure/ignored); returns the
        state after it ("" when the store could not be reached). Calls admitted in
        an earlier state never move a newer one."""
        if permit.state == DISABLED:
            return DISABLED
        kind = classify(outcome, duration, self.config)
        try:
            return str(
                self._update(
                    lambda st, now: report(st, now, self.config, permit, kind),
                    default="",
                )
            )
        except SharedStateUnavailable:
            logger.warning("breaker.store_unavailable name=%s op=record", self.name)
            return ""

    # --- operators and views -----------------------------------------------------
    def set_state(
        self, to_state: str, *, reason: str, actor: Any = None, request: Any = None
    ) -> str:
        """Operator transition (reset/force); returns the previous state."""
        return str(
            self._update(
                lambda st, now: operator_set(st, now, self.config, to_state, reason),
                actor=actor,
                request=request,
                default="",
                always_announce=True,
            )
        )

    def snapshot(self) -> BreakerSnapshot:
        st = BreakerState.load(self.store.read(self.key).value)
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
