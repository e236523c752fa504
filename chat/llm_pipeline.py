"""The LLM branch of a chat turn: limits → breaker → LLM (deadline) → records → fallback.

Used when an LLM is configured (GROQ_API_KEY), the turn is typed text (not a
button) and the rules were not confident. The turn runs in three phases so that no
transaction and no thread is held while the model answers:

1. ``llm_admit`` (sync): per-user/global limits and the in-flight slot, the shared
   breaker, and the prompt (sanitized history trimmed to the token budget).
   A refusal is answered at once with the rules fallback; so is an unreachable
   shared store (fail closed, outcome "state_unavailable").
2. the call itself (async: ``chat.llm.complete`` / ``chat.llm_stream.stream``).
3. ``llm_conclude`` (sync): release the slot, report to the breaker, store the
   LLMCall record (never content), open an incident on credential errors, and turn
   the reply into a ``ReplyDraft``: the model's text is sanitized again, and any
   failure becomes the rules answer with source "fallback" and a notice. It runs
   at most once per admission, whatever path ends the call (a reply, an error, a
   client that went away), so the slot and a half-open trial slot are released
   exactly once; callers run it in ``finally``.

A stream cut after text was shown is stored as status "incomplete" (sanitized
partial text, with the interrupted notice): it is never a complete answer, it is
left out of the next prompt (conversation_context takes complete messages only) and
the client gets ``event: error``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from asgiref.sync import async_to_sync
from django.db import DatabaseError, transaction
from django.views.decorators.debug import sensitive_variables

from chat import assistant, breaker, limits, llm, notices, prompting, sanitizer
from chat.models import LLMCall, Message
from stepsync.db import statements
from stepsync.sharedstate import SharedStateUnavailable, default_store

logger = logging.getLogger(__name__)

CREDENTIAL_INCIDENT_KEY = "llm-credentials"
T = TypeVar("T")


@dataclass
class Admission:
    """An admitted LLM call: its limit slot, breaker permit and prompt."""

    user_id: int
    conversation_id: int
    slot: limits.LLMSlot
    permit: breaker.Permit
    messages: list[dict[str, str]]
    started: float
    concluded: bool = False


def client_gone() -> llm.LLMError:
    """The error a call ends with when its client went away (never a breaker
    failure)."""
    return llm.LLMError("client_disconnected", permanent=True)


def wants_llm(
    *, quick_reply: str | None, rules_reply: assistant.AssistantReply
) -> bool:
    """The LLM answers typed text the rules are not confident about, if configured."""
    return llm.llm_enabled() and quick_reply is None and not rules_reply.confident


def _quick_replies(reply: assistant.AssistantReply) -> list[dict[str, str]]:
    return [{"label": q.label, "value": q.value} for q in reply.quick_replies]


def record_call(
    *,
    user_id: int | None,
    conversation_id: int | None,
    outcome: str,
    stats: llm.CallStats | None = None,
    breaker_state: str = "",
    streamed: bool = False,
) -> LLMCall:
    """Store one LLMCall row: ids, timings, counts and codes — never content."""
    stats = stats or llm.CallStats()
    call = LLMCall(
        user_id=user_id,
        conversation_id=conversation_id,
        latency_ms=min(stats.latency_ms, 2**31 - 1),
        ttft_ms=stats.ttft_ms,
        tokens_in=stats.tokens_in,
        tokens_out=stats.tokens_out,
        retries=stats.retries,
        upstream_calls=stats.upstream_calls,
        outcome=outcome[:32],
        status_code=stats.status_code,
        breaker_state=breaker_state,
        streamed=streamed,
        model=llm.LLMConfig.from_settings().model[:100],
    )
    return statements.insert(call)


def llm_reserve(*, user_id: int) -> limits.LLMSlot | str:
    """Take an LLM call's limit slot: the slot, or the refusal code
    ("rate_limited", "state_unavailable"). Called inside the turn's write
    transaction when the shared store joins it (``slot_joins_turn``): one take of
    SQLite's write lock for the turn and the slot, and a turn that fails to commit
    takes its slot back with it."""
    try:
        return limits.llm_slot_acquire(user_id=user_id)
    except limits.RateLimited:
        return "rate_limited"
    except SharedStateUnavailable:
        return "state_unavailable"


def slot_joins_turn() -> bool:
    """True when the limit counts are rows of the turn's database (no REDIS_URL)."""
    return default_store().transactional


def llm_admit(
    *,
    user_id: int,
    conversation: Any,
    streamed: bool = False,
    reserved: limits.LLMSlot | str | None = None,
) -> tuple[Admission | None, str]:
    """Phase 1: take a limit slot (unless ``reserved`` holds llm_reserve's result)
    and a breaker permit, and build the prompt.

    Returns (admission, "") or (None, refusal code: "rate_limited", "breaker_open",
    "prompt_blocked", "state_unavailable"); a refusal is recorded as an LLMCall
    with that outcome.
    """
    from chat.services import conversation_context

    if reserved is None:
        reserved = llm_reserve(user_id=user_id)
    if isinstance(reserved, str):
        return None, _refused(user_id, conversation, reserved, streamed)
    slot = reserved
    the_breaker = breaker.get_breaker()
    try:
        permit = the_breaker.allow()
    except breaker.BreakerRejected as rejected:
        limits.llm_slot_release(slot)
        return None, _refused(
            user_id, conversation, "breaker_open", streamed, rejected.state
        )
    except SharedStateUnavailable:
        limits.llm_slot_release(slot)
        return None, _refused(user_id, conversation, "state_unavailable", streamed)
    try:
        history = conversation_context(conversation=conversation)
        messages = prompting.build_messages(history=history)
    except BaseException as exc:
        # Whatever stops the prompt (a blocked turn, a database error) frees both
        # slots now rather than when their leases run out.
        limits.llm_slot_release(slot)
        the_breaker.record(permit, outcome=breaker.IGNORED)
        if isinstance(exc, prompting.PromptBlocked):
            return None, _refused(user_id, conversation, "prompt_blocked", streamed)
        raise
    admission = Admission(
        user_id, conversation.pk, slot, permit, messages, time.monotonic()
    )
    return admission, ""


def _refused(
    user_id: int,
    conversation: Any,
    code: str,
    streamed: bool,
    state: str = "",
) -> str:
    record_call(
        user_id=user_id,
        conversation_id=conversation.pk,
        outcome=code,
        breaker_state=state,
        streamed=streamed,
    )
    logger.info("llm.refused conversation=%s code=%s", conversation.pk, code)
    return code


def _breaker_outcome(error: llm.LLMError | None) -> str:
    if error is None:
        return breaker.SUCCESS
    return breaker.FAILURE if error.counts_against_breaker else breaker.IGNORED


def llm_conclude(
    *,
    admission: Admission,
    error: llm.LLMError | None,
    stats: llm.CallStats,
    streamed: bool,
    request: Any = None,
) -> str:
    """Phase 3 bookkeeping: slot, breaker, LLMCall row, credential incident.

    Idempotent per admission: only the first call does anything (later ones return
    ""). Returns the breaker state after the report. Never sees or stores content.
    """
    if admission.concluded:
        return ""
    admission.concluded = True
    limits.llm_slot_release(admission.slot)
    duration = time.monotonic() - admission.started
    state = breaker.get_breaker().record(
        admission.permit, outcome=_breaker_outcome(error), duration=duration
    )
    if error is None and stats.tokens_in == 0:
        stats.tokens_in = prompting.prompt_tokens(admission.messages)
    record_call(
        user_id=admission.user_id,
        conversation_id=admission.conversation_id,
        outcome="ok" if error is None else error.code,
        stats=stats,
        breaker_state=state or admission.permit.state,
        streamed=streamed,
    )
    logger.info(
        "llm.call conversation=%s outcome=%s ms=%d upstream=%d status=%s",
        admission.conversation_id,
        "ok" if error is None else error.code,
        stats.latency_ms,
        stats.upstream_calls,
        stats.status_code,
    )
    if error is not None and error.code == "auth_failed":
        credentials_incident(status_code=error.status_code, request=request)
    return state


def llm_conclude_storing(
    *,
    admission: Admission,
    error: llm.LLMError | None,
    stats: llm.CallStats,
    streamed: bool,
    store: Callable[[], T],
    request: Any = None,
) -> T:
    """Phase 3 in one write transaction: ``llm_conclude``, then ``store()`` (the
    reply and its audit event), committed together.

    If that transaction fails, the bookkeeping is rolled back with it and is done
    again on its own (the slot and a half-open trial slot must not wait for their
    leases), then the error is raised.
    """
    try:
        with transaction.atomic():
            llm_conclude(
                admission=admission,
                error=error,
                stats=stats,
                streamed=streamed,
                request=request,
            )
            return store()
    except BaseException:
        admission.concluded = False
        try:
            llm_conclude(
                admission=admission, error=error, stats=stats, streamed=streamed
            )
        except DatabaseError:  # the first error is the one to report
            logger.warning(
                "llm.conclude_failed conversation=%s", admission.conversation_id
            )
        raise


def credentials_incident(*, status_code: int | None, request: Any = None) -> None:
    """401/403 from the LLM: one open incident (de-duplicated) and an audit event."""
    from compliance.incidents import incident_open
    from compliance.models import AuditAction
    from compliance.services import audit_record

    incident_open(
        title="LLM provider rejected the API key",
        severity="high",
        category="llm",
        description=(
            f"The LLM endpoint answered HTTP {status_code or 0}; check GROQ_API_KEY. "
            "Replies use the rule-based fallback meanwhile."
        ),
        source_key=CREDENTIAL_INCIDENT_KEY,
        system_principal="llm",
    )
    audit_record(
        action=AuditAction.LLM_CREDENTIAL_ERROR,
        system_principal="llm",
        target_type="llm",
        target_id="groq",
        outcome="failure",
        details={"status_code": int(status_code or 0)},
    )


# --- drafts -----------------------------------------------------------------------
@sensitive_variables("text")
def llm_draft(*, text: str, rules_reply: assistant.AssistantReply) -> Any:
    """A source "llm" draft from the model's text, sanitized again (None if blocked
    or empty after sanitizing: the caller falls back)."""
    from chat.services import ReplyDraft

    result = sanitizer.sanitize(text)
    clean = result.text.strip()
    if result.blocked or not clean:
        return None
    return ReplyDraft(
        text=clean,
        quick_replies=[],
        source=Message.Source.LLM,
        state=dict(rules_reply.state),
    )


@sensitive_variables("sanitized_text")
def fallback_draft(*, state: dict[str, Any], sanitized_text: str) -> Any:
    """The best rule-based answer, marked source "fallback" with the notice."""
    from chat.services import ReplyDraft

    reply = assistant.fallback(state=state, text=sanitized_text)
    return ReplyDraft(
        text=reply.text,
        quick_replies=_quick_replies(reply),
        source=Message.Source.FALLBACK,
        state=dict(reply.state),
        notice=notices.FALLBACK_NOTICE,
    )


@sensitive_variables("text")
def incomplete_draft(*, text: str, rules_reply: assistant.AssistantReply) -> Any:
    """A cut stream's partial text (sanitized), stored as status "incomplete"."""
    from chat.services import ReplyDraft

    result = sanitizer.sanitize(text)
    return ReplyDraft(
        text="" if result.blocked else result.text,
        quick_replies=[],
        source=Message.Source.LLM,
        state=dict(rules_reply.state),
        notice=notices.INCOMPLETE_NOTICE,
        status=Message.Status.INCOMPLETE,
    )


# --- the synchronous seam (services._reply_for) -----------------------------------
@sensitive_variables("sanitized_text")
def reply_draft_sync(
    *,
    conversation: Any,
    sanitized_text: str,
    quick_reply: str | None,
    assistant_reply: assistant.AssistantReply,
) -> Any:
    """The LLM branch for the synchronous message path (HTML form, DRF view).

    Returns None when the rules answer stands; otherwise a draft with source "llm"
    or "fallback". Blocks this request's thread for the call (the async API view
    does not).
    """
    if not wants_llm(quick_reply=quick_reply, rules_reply=assistant_reply):
        return None
    state_before = dict(conversation.state or {})
    admission, _refusal = llm_admit(
        user_id=conversation.user_id, conversation=conversation
    )
    if admission is None:
        return fallback_draft(state=state_before, sanitized_text=sanitized_text)
    stats = llm.CallStats()
    text = ""
    error: llm.LLMError | None = client_gone()
    try:
        text, error = async_to_sync(call_complete)(admission.messages, stats)
    finally:
        # Also when the request is cancelled mid-call: the slot and a trial slot
        # must not wait for their leases.
        llm_conclude(admission=admission, error=error, stats=stats, streamed=False)
    draft = None if error else llm_draft(text=text, rules_reply=assistant_reply)
    return draft or fallback_draft(state=state_before, sanitized_text=sanitized_text)


async def call_complete(
    messages: list[dict[str, str]], stats: llm.CallStats
) -> tuple[str, llm.LLMError | None]:
    """Phase 2 (non-streamed): the reply text or the LLMError, never raising one.

    An unexpected exception is logged (event name only) and becomes
    LLMError("internal"), so the user still gets the fallback.
    """
    try:
        return await llm.complete(messages, stats=stats), None
    except llm.LLMError as error:
        return "", error
    except Exception:  # boundary of the LLM call: a bug must not cost the reply
        logger.exception("llm.call_unexpected_error")
        return "", llm.LLMError("internal", permanent=True)
