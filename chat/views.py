"""Conversation pages of the web UI: list, chat (works without JavaScript), export.

Each view checks access through the selector (other users' ids are 404), validates,
calls one service and answers; a chat POST redirects back (post/redirect/get).
static/js/chat.js enhances the chat page by posting to the JSON API instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from chat import notices
from chat.exceptions import ChatError, ConversationClosed, PHIBlocked
from chat.forms import MessageForm, RenameForm
from chat.models import Conversation, Message
from chat.selectors import (
    conversation_get_for_user,
    conversation_list_for_user,
    conversation_successor,
)
from chat.services import (
    conversation_delete,
    conversation_export_for_user,
    conversation_open,
    conversation_rename,
    conversation_start,
    message_send,
)


@dataclass(frozen=True)
class MessageView:
    """What the chat page shows of one message (stored, sanitized text only)."""

    pk: int
    is_assistant: bool
    text: str
    redaction_notice: str
    service_notice: str
    incomplete: bool
    quick_replies: list[dict[str, str]]


def _message_view(message: Message, *, with_quick_replies: bool) -> MessageView:
    is_assistant = message.role == Message.Role.ASSISTANT
    service_notice = message.notice
    if not service_notice and message.source == Message.Source.FALLBACK:
        service_notice = notices.FALLBACK_NOTICE
    quick_replies = [
        {"label": str(item["label"]), "value": str(item["value"])}
        for item in (message.quick_replies or [])
        if isinstance(item, dict) and "label" in item and "value" in item
    ]
    return MessageView(
        pk=message.pk,
        is_assistant=is_assistant,
        text=message.text,
        redaction_notice=notices.redaction_notice(message.redactions or {}),
        service_notice=service_notice if is_assistant else "",
        incomplete=message.status == Message.Status.INCOMPLETE,
        quick_replies=quick_replies if with_quick_replies else [],
    )


def conversation_label(conversation: Conversation) -> str:
    """The title, or a dated label for an untitled conversation."""
    if conversation.title:
        return conversation.title
    started = timezone.localtime(conversation.created_at)
    return f"Conversation of {started:%d %b %Y, %H:%M}"


@login_required
@require_http_methods(["GET"])
def conversation_list(request: HttpRequest) -> HttpResponse:
    conversations = [
        {"conversation": c, "label": conversation_label(c), "open": c.is_open()}
        for c in conversation_list_for_user(user=request.user)
    ]
    context = {
        "conversations": conversations,
        "retention_days": settings.DATA_RETENTION_DAYS,
    }
    return render(request, "chat/conversation_list.html", context)


@login_required
@require_POST
def conversation_new(request: HttpRequest) -> HttpResponse:
    conversation = conversation_start(user=request.user, request=request)
    return redirect("chat:conversation-detail", pk=conversation.pk)


@login_required
@require_http_methods(["GET"])
def conversation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = conversation_get_for_user(user=request.user, pk=pk, request=request)
    stored = conversation_open(
        user=request.user, conversation=conversation, request=request
    )
    is_open = conversation.is_open()
    last_pk = stored[-1].pk if stored else None
    chat_messages = [
        _message_view(m, with_quick_replies=is_open and m.pk == last_pk) for m in stored
    ]
    context = {
        "conversation": conversation,
        "label": conversation_label(conversation),
        "chat_messages": chat_messages,
        "is_open": is_open,
        "previous": _linked(conversation.continued_from),
        "successor": _linked(conversation_successor(conversation=conversation)),
        "form": MessageForm(),
        "max_chars": settings.MAX_MESSAGE_CHARS,
        "api_url": f"/api/conversations/{conversation.pk}/messages/",
        "ui_texts": _ui_texts(),
    }
    return render(request, "chat/conversation_detail.html", context)


def _linked(conversation: Conversation | None) -> dict[str, Any] | None:
    """A link target for another of the user's conversations (pk and label)."""
    if conversation is None:
        return None
    return {"pk": conversation.pk, "label": conversation_label(conversation)}


def _ui_texts() -> dict[str, Any]:
    """Labels and fixed sentences for chat.js (no user data)."""
    return {
        "labels": notices.phi_labels(),
        "fallback": notices.FALLBACK_NOTICE,
        "incomplete": notices.INCOMPLETE_NOTICE,
        "closed": notices.CLOSED_NOTICE,
    }


def _flash_error(request: HttpRequest, exc: ChatError) -> None:
    if isinstance(exc, PHIBlocked):
        text = notices.blocked_notice(exc.types)
    elif exc.status_code == 429:
        text = notices.rate_limit_notice(getattr(exc, "retry_after", None))
    elif isinstance(exc, ConversationClosed):
        text = notices.CLOSED_NOTICE
    else:
        text = exc.message
    flash.error(request, text)


@sensitive_post_parameters("text")
@login_required
@require_POST
def message_create(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = conversation_get_for_user(user=request.user, pk=pk, request=request)
    form = MessageForm(request.POST)
    target = reverse("chat:conversation-detail", kwargs={"pk": conversation.pk})
    if not form.is_valid():
        # Never echo the text back: it may hold identifiers.
        flash.error(request, "; ".join(_form_errors(form)))
        return redirect(target + "#composer")
    data = form.cleaned_data
    try:
        outcome = message_send(
            user=request.user,
            conversation=conversation,
            text=data["text"] if not data["quick_reply"] else None,
            quick_reply=data["quick_reply"] or None,
            idempotency_key=data["idempotency_key"] or None,
            request=request,
        )
    except ChatError as exc:
        _flash_error(request, exc)
        return redirect(target + "#composer")
    if outcome.conversation_id != conversation.pk:
        target = reverse(
            "chat:conversation-detail", kwargs={"pk": outcome.conversation_id}
        )
    return redirect(target + "#latest")


def _form_errors(form: MessageForm) -> list[str]:
    limit = settings.MAX_MESSAGE_CHARS
    if len(form.data.get("text", "")) > limit:
        return [f"Messages can be at most {limit} characters long."]
    return ["Type a message or choose one of the options."]


@login_required
@require_http_methods(["GET", "POST"])
def conversation_rename_view(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = conversation_get_for_user(user=request.user, pk=pk, request=request)
    form = RenameForm(request.POST or None, initial={"title": conversation.title})
    if request.method == "POST" and form.is_valid():
        conversation_rename(
            user=request.user,
            conversation=conversation,
            title=form.cleaned_data["title"],
            request=request,
        )
        flash.success(request, "Conversation renamed.")
        return redirect("chat:conversation-list")
    status = 400 if request.method == "POST" else 200
    context = {
        "conversation": conversation,
        "label": conversation_label(conversation),
        "form": form,
    }
    return render(request, "chat/conversation_rename.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def conversation_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = conversation_get_for_user(user=request.user, pk=pk, request=request)
    if request.method == "POST":
        try:
            conversation_delete(
                user=request.user, conversation=conversation, request=request
            )
        except ChatError as exc:
            _flash_error(request, exc)
            return redirect("chat:conversation-list")
        flash.success(request, "Conversation deleted.")
        return redirect("chat:conversation-list")
    context = {"conversation": conversation, "label": conversation_label(conversation)}
    return render(request, "chat/conversation_confirm_delete.html", context)


@login_required
@require_http_methods(["GET"])
def data_export(request: HttpRequest) -> HttpResponse:
    data = conversation_export_for_user(user=request.user, request=request)
    response = HttpResponse(
        json.dumps(data, indent=2, ensure_ascii=False),
        content_type="application/json; charset=utf-8",
    )
    stamp = timezone.now().strftime("%Y%m%d")
    filename = f"step-sync-my-data-{stamp}.json"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
