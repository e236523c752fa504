"""Admin for conversations and messages: metadata only; content behind a permission.

Lists and searches never show or match text. A message's text is shown on its page
only to staff holding ``compliance.view_conversation_content``, and every such view goes through
compliance's content_access_check, which audits STAFF_CONTENT_VIEW. Nobody, superusers
included, adds, changes or deletes chat rows here (a delete would skip the hold
check and the CONVERSATION_DELETE audit); the only write is the legal hold, through
its service, for holders of ``compliance.set_legal_hold``.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from accounts.staff import staff_user
from chat.models import Conversation, Message
from chat.services_conversations import conversation_legal_hold_set
from compliance.legal_hold import LegalHoldReason, legal_hold_permitted
from compliance.services import CONTENT_PERMISSION, content_access_check

LEGAL_HOLD_TEMPLATE = "admin/chat/conversation/legal_hold.html"


class ReadOnlyAdmin(admin.ModelAdmin):
    """Chat rows are written by the app only; staff look, never edit or delete."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class LegalHoldForm(forms.Form):
    """Why a hold changes: a listed reason and, optionally, an incident reference."""

    reason = forms.ChoiceField(choices=LegalHoldReason.choices)
    incident_reference = forms.CharField(
        required=False,
        max_length=20,
        help_text="Optional, e.g. PHI-2026-001. No names or other details here.",
    )


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
    actions = ["place_legal_hold", "release_legal_hold"]

    def has_legal_hold_permission(self, request: HttpRequest) -> bool:
        return legal_hold_permitted(request.user)

    @admin.action(description="Place on legal hold", permissions=["legal_hold"])
    def place_legal_hold(
        self, request: HttpRequest, queryset: QuerySet[Conversation]
    ) -> HttpResponse | None:
        return self._legal_hold(request, queryset, on=True)

    @admin.action(description="Release legal hold", permissions=["legal_hold"])
    def release_legal_hold(
        self, request: HttpRequest, queryset: QuerySet[Conversation]
    ) -> HttpResponse | None:
        return self._legal_hold(request, queryset, on=False)

    def _legal_hold(
        self, request: HttpRequest, queryset: QuerySet[Conversation], *, on: bool
    ) -> HttpResponse | None:
        form = LegalHoldForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            try:
                changed = sum(
                    conversation_legal_hold_set(
                        conversation=conversation,
                        on=on,
                        actor=request.user,
                        reason=form.cleaned_data["reason"],
                        incident_reference=form.cleaned_data["incident_reference"],
                        request=request,
                    )
                    for conversation in queryset.order_by("pk")
                )
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                verb = "placed on" if on else "released from"
                self.message_user(
                    request,
                    f"{changed} conversation(s) {verb} legal hold; "
                    f"{queryset.count() - changed} already were.",
                    messages.SUCCESS,
                )
                return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Place on legal hold" if on else "Release legal hold",
            "form": form,
            "queryset": queryset,
            "action": "place_legal_hold" if on else "release_legal_hold",
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, LEGAL_HOLD_TEMPLATE, context)


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
                user=staff_user(request),
                conversation_id=message.conversation_id,
                request=request,
            )
        except PermissionDenied:
            return None
        if allowed is False:
            return None
        return message.text
