"""POST /api/conversations/{id}/messages/ as an async view: JSON 201 or SSE.

Same contract as DESIGN.md and chat/api.py's DRF view (which stays the schema's
reference), but async so that no thread waits while the LLM answers:

- phase 1, one ``run_database_work`` call (on the event loop with SQLCipher, else
  in the request's thread; stepsync.loop_database): authenticate (token, or
  session + CSRF, via DRF's authenticators), validate, ``message_turn_begin``,
  which stores a rules reply with the turn in one write transaction, or else
  takes the LLM call's limit slot in that transaction (when the limits live in
  the database); then the rest of the LLM admission (breaker, prompt);
- phase 2, awaited: the LLM call (or stream) on the event loop;
- phase 3, one ``run_database_work`` call: bookkeeping and
  ``message_turn_finish``, in one write transaction
  (llm_pipeline.llm_conclude_storing).

With ``Accept: text/event-stream`` the reply streams: ``event: delta`` {"text"} ...
then ``event: done`` {"user_message", "reply"} (the 201 body), or ``event: error``
{"error", "message"} when a stream is cut after text was shown (the partial text is
stored as "incomplete") or the turn could not be stored. Rules and fallback replies
stream as one delta + done. Streamed text is released sanitized at sentence ends
(chat.stream_redaction). Errors before the stream starts are ordinary JSON error
responses.

Phase 3 runs once per turn, whatever ends it: the reply, an error, or a client
that went away (a cancelled request still releases the limit slot and any
half-open trial slot, shielded from the cancellation).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.response import StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters
from rest_framework import exceptions
from rest_framework.authentication import SessionAuthentication
from rest_framework.request import Request

from accounts.tokens import TokenAuthentication
from chat import api, llm, llm_pipeline, llm_stream, selectors, services
from chat.exceptions import ChatError
from chat.limits import RateLimited
from chat.serializers import MessageInputSerializer
from chat.stream_redaction import SanitizingRelay
from stepsync.api import exception_handler
from stepsync.db.pooling import release_pooled_connections
from stepsync.loop_database import run_database_work
from stepsync.shared_threads import shares_threads
from stepsync.sharedstate import SharedStateUnavailable

logger = logging.getLogger(__name__)

STREAM_ERROR = {
    "error": "stream_interrupted",
    "message": "The reply was interrupted. Please try again.",
}
UNAVAILABLE = {
    "error": "unavailable",
    "message": "The service is busy. Please try again shortly.",
}


@dataclass
class _Done:
    outcome: services.MessageOutcome


@dataclass
class _Pending:
    user: Any
    conversation: Any
    turn: services.TurnStarted
    admission: llm_pipeline.Admission
    state_before: dict[str, Any]
    request: HttpRequest
    finish_started: bool = False


# --- errors -----------------------------------------------------------------------
def _error_response(exc: Exception) -> HttpResponse:
    if isinstance(exc, ChatError):
        response = JsonResponse(exc.payload(), status=exc.status_code)
        if isinstance(exc, RateLimited):
            response["Retry-After"] = str(exc.retry_after)
        return response
    if isinstance(exc, SharedStateUnavailable):
        return JsonResponse(UNAVAILABLE, status=503)
    if isinstance(exc, RequestDataTooBig | api.RequestTooLarge):
        body = {"error": "too_large", "message": api.RequestTooLarge.default_detail}
        return JsonResponse(body, status=413)
    drf_response = exception_handler(exc, {})
    if drf_response is None:
        raise exc
    response = JsonResponse(drf_response.data, status=drf_response.status_code)
    for header in ("WWW-Authenticate", "Retry-After"):
        if header in drf_response:
            response[header] = drf_response[header]
    return response


_HANDLED = (
    ChatError,
    exceptions.APIException,
    Http404,
    RequestDataTooBig,
    DatabaseError,
    SharedStateUnavailable,
)


# --- phase 1 ----------------------------------------------------------------------
def _drf_request(request: HttpRequest) -> Request:
    # The strict JSON parser must be on this Request: DRF's CSRF check reads
    # request.POST, which parses the body through the Request's own parsers.
    return Request(
        request,
        parsers=[api.StrictJSONParser()],
        authenticators=[SessionAuthentication(), TokenAuthentication()],
    )


def _authenticate(drf_request: Request) -> Any:
    user = drf_request.user  # raises AuthenticationFailed / PermissionDenied (CSRF)
    if user is None or not user.is_authenticated:
        raise exceptions.NotAuthenticated()
    return user


def _input(drf_request: Request) -> dict[str, Any]:
    if drf_request.content_type.split(";")[0].strip() != "application/json":
        raise exceptions.UnsupportedMediaType(drf_request.content_type or "")
    serializer = MessageInputSerializer(data=drf_request.data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _begin(request: HttpRequest, pk: int, streamed: bool) -> _Done | _Pending:
    try:
        return _begin_turn(request, pk, streamed)
    finally:
        release_pooled_connections()  # not held while the LLM answers


def _begin_turn(request: HttpRequest, pk: int, streamed: bool) -> _Done | _Pending:
    drf_request = _drf_request(request)
    user = _authenticate(drf_request)
    data = _input(drf_request)
    conversation = selectors.conversation_get_for_user(
        user=user, pk=pk, request=request
    )
    started = services.message_turn_begin(
        user=user,
        conversation=conversation,
        text=data.get("text"),
        quick_reply=data.get("quick_reply"),
        idempotency_key=api.idempotency_key_from(request),
        request=request,
        answer_from_rules=_rules_answer,
        reserve=_reserver(user) if llm_pipeline.slot_joins_turn() else None,
    )
    if isinstance(started, services.MessageOutcome):
        return _Done(started)  # a replay, or the rules' reply stored with the turn
    conversation = started.conversation  # a successor when the asked one had closed
    state_before = dict(conversation.state or {})
    admission, _ = llm_pipeline.llm_admit(
        user_id=user.pk,
        conversation=conversation,
        streamed=streamed,
        reserved=started.reserved,
    )
    if admission is None:
        draft = llm_pipeline.fallback_draft(
            state=state_before, sanitized_text=started.sanitized_text
        )
        return _Done(_finish_turn(user, conversation, started, draft, request))
    return _Pending(user, conversation, started, admission, state_before, request)


def _rules_answer(quick_reply: str | None, rules: Any) -> bool:
    return not llm_pipeline.wants_llm(quick_reply=quick_reply, rules_reply=rules)


def _reserver(user: Any) -> Any:
    """The LLM slot taken in the turn's own write transaction (llm_reserve)."""
    return lambda: llm_pipeline.llm_reserve(user_id=user.pk)


def _finish_turn(
    user: Any, conversation: Any, turn: Any, draft: Any, request: HttpRequest
) -> services.MessageOutcome:
    return services.message_turn_finish(
        user=user, conversation=conversation, turn=turn, draft=draft, request=request
    )


# --- phase 3 ----------------------------------------------------------------------
def _finish(
    pending: _Pending,
    text: str,
    error: llm.LLMError | None,
    stats: llm.CallStats,
    streamed: bool,
) -> services.MessageOutcome | None:
    """Conclude the call and store the reply; None when phase 3 already ran."""
    if pending.finish_started:
        return None
    pending.finish_started = True
    # The reply is sanitized before the transaction: no CPU work under its lock.
    rules = pending.turn.rules_reply
    draft = None
    if error is None:
        draft = llm_pipeline.llm_draft(text=text, rules_reply=rules)
    elif streamed and text:
        draft = llm_pipeline.incomplete_draft(text=text, rules_reply=rules)
    if draft is None:
        draft = llm_pipeline.fallback_draft(
            state=pending.state_before, sanitized_text=pending.turn.sanitized_text
        )
    try:
        return llm_pipeline.llm_conclude_storing(
            admission=pending.admission,
            error=error,
            stats=stats,
            streamed=streamed,
            request=pending.request,
            store=lambda: _finish_turn(
                pending.user, pending.conversation, pending.turn, draft, pending.request
            ),
        )
    finally:
        release_pooled_connections()


# --- the view ---------------------------------------------------------------------
def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


async def _stream_done(outcome: services.MessageOutcome) -> AsyncIterator[bytes]:
    yield _sse("delta", {"text": outcome.reply.text})
    yield _sse("done", api.outcome_json(outcome))


async def _stream_llm(pending: _Pending) -> AsyncIterator[bytes]:
    stats = llm.CallStats()
    relay = SanitizingRelay()
    try:
        error: llm.LLMError | None = None
        try:
            async with contextlib.aclosing(
                llm_stream.stream(pending.admission.messages, stats=stats)
            ) as pieces:
                async for piece in pieces:
                    shown = relay.feed(piece)
                    if shown:
                        yield _sse("delta", {"text": shown})
            tail = relay.flush()
            if tail:
                yield _sse("delta", {"text": tail})
        except llm.LLMError as exc:
            error = exc
        except Exception:  # boundary of the LLM call: a bug must not cost the reply
            logger.exception(
                "llm.stream_unexpected_error conversation=%s", pending.conversation.pk
            )
            error = llm.LLMError("internal", permanent=True)
        try:
            outcome = await run_database_work(
                _finish, pending, relay.text, error, stats, True
            )
        except Exception:  # the stream is open: end it with an event, not a reset
            logger.exception(
                "llm.stream_finish_failed conversation=%s", pending.conversation.pk
            )
            outcome = None
        if outcome is None or outcome.reply.status == "incomplete":
            yield _sse("error", STREAM_ERROR)
            return
        if error is not None:  # nothing was shown: the fallback streams instead
            yield _sse("delta", {"text": outcome.reply.text})
        yield _sse("done", api.outcome_json(outcome))
    finally:
        # The client went away mid-stream: still release the slots and store the
        # turn (shielded from the cancellation). A no-op once phase 3 has run.
        await _conclude_abandoned(pending, relay.text, stats, streamed=True)


async def _conclude_abandoned(
    pending: _Pending, text: str, stats: llm.CallStats, *, streamed: bool
) -> None:
    if pending.finish_started:
        return
    gone = llm_pipeline.client_gone()
    await asyncio.shield(
        run_database_work(_finish, pending, text, gone, stats, streamed)
    )


def _sse_response(body: AsyncIterator[bytes]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(body, content_type="text/event-stream")
    response["Cache-Control"] = "no-store"
    response["X-Accel-Buffering"] = "no"
    return response


@shares_threads  # its calls into threads are short database work (the LLM is awaited)
@csrf_exempt  # session clients are CSRF-checked by DRF's SessionAuthentication
@sensitive_post_parameters("text")
async def message_create(
    request: HttpRequest, pk: int
) -> HttpResponse | StreamingHttpResponse:
    """Send a message (or a quick-reply value); 201 JSON, or SSE when asked."""
    if request.method != "POST":
        return _error_response(exceptions.MethodNotAllowed(request.method or ""))
    streamed = "text/event-stream" in request.headers.get("Accept", "")
    try:
        begun = await run_database_work(_begin, request, pk, streamed)
    except _HANDLED as exc:
        return _error_response(exc)
    if isinstance(begun, _Done):
        if streamed:
            return _sse_response(_stream_done(begun.outcome))
        return JsonResponse(api.outcome_json(begun.outcome), status=201)
    if streamed:
        return _sse_response(_stream_llm(begun))
    return await _reply_json(begun)


async def _reply_json(pending: _Pending) -> HttpResponse:
    stats = llm.CallStats()
    try:
        text, error = await llm_pipeline.call_complete(
            pending.admission.messages, stats
        )
        outcome = await run_database_work(_finish, pending, text, error, stats, False)
    except _HANDLED as exc:
        return _error_response(exc)
    finally:
        # A cancelled request (the client went away) still releases its slots.
        await _conclude_abandoned(pending, "", stats, streamed=False)
    assert outcome is not None  # phase 3 ran here first
    return JsonResponse(api.outcome_json(outcome), status=201)


# drf-spectacular only documents DRF views: this one is described by the DRF class.
message_create.cls = api.MessageCreateView  # type: ignore[attr-defined]  # read by drf-spectacular
message_create.initkwargs = {}  # type: ignore[attr-defined]  # read by drf-spectacular
