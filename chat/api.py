"""JSON API for conversations and messages (DRF): thin views over chat services.

Every error is JSON: chat domain errors carry their own status and body; oversized
bodies get 413 ``too_large``; unparseable bodies get a fixed message (the decoder's
text is never echoed).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.tokens import TokenAuthentication
from chat import selectors, services
from chat.exceptions import ChatError, MessageInvalid
from chat.models import Conversation
from chat.serializers import (
    ConversationCreateSerializer,
    ConversationDetailSerializer,
    ConversationRenameSerializer,
    ConversationSerializer,
    ErrorSerializer,
    MessageInputSerializer,
    MessageSendOutSerializer,
    MessageSerializer,
)

IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9._:-]{1,128}")
LIST_LIMIT = 200


class RequestTooLarge(exceptions.APIException):
    """The body is over DATA_UPLOAD_MAX_MEMORY_SIZE."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "too_large"


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError("duplicate key")
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError("non-standard JSON constant")


class StrictJSONParser(JSONParser):
    """JSON with a size limit, strict UTF-8, no duplicate keys and no NaN/Infinity."""

    def parse(
        self,
        stream: Any,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        request = (parser_context or {}).get("request")
        meta = getattr(request, "META", {})
        try:
            declared = int(meta.get("CONTENT_LENGTH") or 0)
        except (TypeError, ValueError):
            declared = 0
        if limit is not None and declared > limit:
            raise RequestTooLarge()
        try:
            raw = stream.read(limit + 1) if limit is not None else stream.read()
        except RequestDataTooBig:
            raise RequestTooLarge() from None
        if limit is not None and len(raw) > limit:
            raise RequestTooLarge()
        try:
            text = raw.decode("utf-8-sig")
            return json.loads(
                text,
                object_pairs_hook=_reject_duplicates,
                parse_constant=_reject_constant,
            )
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise exceptions.ParseError() from None


class ChatAPIView(APIView):
    """Base: strict JSON in, JSON errors out (domain errors keep their own body)."""

    parser_classes = [StrictJSONParser]
    # Token first, so an anonymous API client gets 401 with WWW-Authenticate: Token.
    authentication_classes = [TokenAuthentication, SessionAuthentication]

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, ChatError):
            return Response(exc.payload(), status=exc.status_code)
        if isinstance(exc, RequestDataTooBig | RequestTooLarge):
            body = {"error": "too_large", "message": RequestTooLarge.default_detail}
            return Response(body, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        return super().handle_exception(exc)


def _validated(serializer_class: type, data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _conversation_json(conversation: Conversation) -> dict[str, Any]:
    return dict(ConversationSerializer(conversation).data)


ERRORS = {
    400: ErrorSerializer,
    403: ErrorSerializer,
    404: ErrorSerializer,
    413: ErrorSerializer,
    415: ErrorSerializer,
}


class ConversationListView(ChatAPIView):
    """The caller's conversations; POST starts a new one (with the welcome)."""

    @extend_schema(responses={200: ConversationSerializer(many=True), **ERRORS})
    def get(self, request: Request) -> Response:
        conversations = selectors.conversation_list_for_user(user=request.user)
        data = ConversationSerializer(conversations[:LIST_LIMIT], many=True).data
        return Response(data)

    @extend_schema(
        request=ConversationCreateSerializer,
        responses={201: ConversationSerializer, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        data = _validated(ConversationCreateSerializer, request.data)
        conversation = services.conversation_start(
            user=request.user, title=data.get("title", ""), request=request
        )
        return Response(_conversation_json(conversation), status=201)


class ConversationDetailView(ChatAPIView):
    """One of the caller's conversations: read (with messages), rename, delete."""

    @extend_schema(responses={200: ConversationDetailSerializer, **ERRORS})
    def get(self, request: Request, pk: int) -> Response:
        conversation = selectors.conversation_get_for_user(
            user=request.user, pk=pk, request=request
        )
        messages = services.conversation_open(
            user=request.user, conversation=conversation, request=request
        )
        data = _conversation_json(conversation)
        data["messages"] = MessageSerializer(messages, many=True).data
        return Response(data)

    @extend_schema(
        request=ConversationRenameSerializer,
        responses={200: ConversationSerializer, **ERRORS},
    )
    def patch(self, request: Request, pk: int) -> Response:
        conversation = selectors.conversation_get_for_user(
            user=request.user, pk=pk, request=request
        )
        data = _validated(ConversationRenameSerializer, request.data)
        conversation = services.conversation_rename(
            user=request.user,
            conversation=conversation,
            title=data["title"],
            request=request,
        )
        return Response(_conversation_json(conversation))

    @extend_schema(responses={204: None, 409: ErrorSerializer, **ERRORS})
    def delete(self, request: Request, pk: int) -> Response:
        conversation = selectors.conversation_get_for_user(
            user=request.user, pk=pk, request=request
        )
        services.conversation_delete(
            user=request.user, conversation=conversation, request=request
        )
        return Response(status=204)


def _download(data: dict[str, Any], filename: str) -> Response:
    response = Response(data)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class ConversationExportView(ChatAPIView):
    """Download one of the caller's conversations as JSON."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT, **ERRORS})
    def get(self, request: Request, pk: int) -> Response:
        conversation = selectors.conversation_get_for_user(
            user=request.user, pk=pk, request=request
        )
        data = services.conversation_export_for_user(
            user=request.user, conversation=conversation, request=request
        )
        return _download(data, f"conversation-{conversation.pk}.json")


class MeExportView(ChatAPIView):
    """Download all of the caller's own data as JSON."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT, **ERRORS})
    def get(self, request: Request) -> Response:
        data = services.conversation_export_for_user(user=request.user, request=request)
        return _download(data, "stepsync-export.json")


def outcome_json(outcome: services.MessageOutcome) -> dict[str, Any]:
    """The contract's 201 body for one user turn (plus the conversation holding it:
    a new one when the conversation posted to had closed)."""
    user_message, reply = outcome.user_message, outcome.reply
    return {
        "conversation_id": outcome.conversation_id,
        "user_message": {
            "id": user_message.pk,
            "text": user_message.text,
            "redactions": dict(user_message.redactions or {}),
        },
        "reply": {
            "id": reply.pk,
            "text": reply.text,
            "source": reply.source,
            "quick_replies": list(reply.quick_replies or []),
            "notice": reply.notice,
        },
    }


def idempotency_key_from(request: Any) -> str | None:
    """The Idempotency-Key header, validated; raises MessageInvalid when malformed."""
    value = request.META.get("HTTP_IDEMPOTENCY_KEY")
    if value is None:
        return None
    if not IDEMPOTENCY_KEY.fullmatch(value):
        raise MessageInvalid("idempotency_key", "Idempotency-Key")
    return str(value)


class MessageCreateView(ChatAPIView):
    """The OpenAPI description of POST /api/conversations/{id}/messages/.

    The route is served by the async ``chat.api_messages.message_create`` (JSON or
    SSE); drf-spectacular documents DRF views only, so that view points its ``cls``
    here. This class is never routed and answers nothing itself.
    """

    http_method_names = ["post"]

    @extend_schema(
        request=MessageInputSerializer,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                str,
                OpenApiParameter.HEADER,
                description="Retries with the same key return the stored outcome.",
            )
        ],
        responses={
            201: MessageSendOutSerializer,
            409: OpenApiResponse(ErrorSerializer, description="conversation_closed"),
            422: OpenApiResponse(ErrorSerializer, description="phi_blocked"),
            **ERRORS,
        },
        description=(
            "Send a message (or a quick-reply value) and get the stored reply. "
            "With `Accept: text/event-stream` the reply streams as server-sent "
            "events: `delta` {text} ..., then `done` with the 201 body, or `error`."
        ),
    )
    def post(self, request: Request, pk: int) -> Response:
        raise exceptions.MethodNotAllowed(request.method or "POST")
