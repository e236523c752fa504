"""Admin for conversations and messages: metadata only; content behind a permission.

Lists and searches never show or match text. A message's text is shown on its page
only to staff holding ``compliance.view_conversation_content``, and every such view goes through
compliance's content_access_check, which audits STAFF_CONTENT_VIEW.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from chat.models import Conversation, Message
from compliance.services import CONTENT_PERMISSION, content_access_check


class ReadOnlyAdmin(admin.ModelAdmin):
    """Chat rows are written by the app only; staff look, never edit."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class MessageInline(admin.TabularInline):
    model = Message
    fields = ("id", "role", "source", "status", "redactions", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Conversation)
class ConversationAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "user_id",
        "status",
        "legal_hold",
        "created_at",
        "last_activity_at",
        "closed_at",
    )
    list_filter = ("status", "legal_hold")
    search_fields = ("=id", "=user__id")
    fields = (
        "id",
        "user",
        "status",
        "legal_hold",
        "created_at",
        "updated_at",
        "last_activity_at",
        "closed_at",
    )
    readonly_fields = fields
    inlines = [MessageInline]
    show_full_result_count = False


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "conversation_id",
        "role",
        "source",
        "status",
        "redaction_total",
        "created_at",
    )
    list_filter = ("role", "source", "status")
    search_fields = ("=id", "=conversation__id")
    fields = (
        "id",
        "conversation",
        "role",
        "source",
        "status",
        "redactions",
        "notice",
        "in_reply_to",
        "created_at",
    )
    readonly_fields = fields
    change_form_template = "admin/chat/message/change_form.html"
    show_full_result_count = False

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        context = dict(extra_context or {})
        context["content_permitted"] = request.user.has_perm(CONTENT_PERMISSION)
        if context["content_permitted"] and request.GET.get("show_content") == "1":
            context["message_content"] = self._content(request, object_id)
        return super().change_view(request, object_id, form_url, context)

    def _content(self, request: HttpRequest, object_id: str) -> str | None:
        message = self.get_object(request, object_id)
        if message is None:
            return None
        try:
            allowed = content_access_check(
                user=request.user,
                conversation_id=message.conversation_id,
                request=request,
            )
        except PermissionDenied:
            return None
        if allowed is False:
            return None
        return message.text
