"""DRF serializers for the chat API: strict inputs, explicit outputs (and the schema)."""

from __future__ import annotations

import copy
from typing import Any

from rest_framework import serializers

from chat.services_conversations import TITLE_MAX_CHARS


class StrictCharField(serializers.CharField):
    """A CharField that accepts JSON strings only (DRF would turn 123 into "123")."""

    default_error_messages = {"invalid": "Not a string."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return str(super().to_internal_value(data))


class QuickReplySerializer(serializers.Serializer):
    label = serializers.CharField()  # type: ignore[assignment]  # shadows Field.label in the stubs only (drf-stubs#158)
    value = serializers.CharField()


class FlatSerializer(serializers.Serializer):
    """A serializer of plain fields, whose per-instance field copies are shallow.

    DRF deep-copies every declared field for each serializer instance, which
    re-runs each field's ``__init__``: ~1 % of a chat turn's CPU for the message
    input (py-spy, bench/bench_turn.py). A plain field is configured once and only
    bound (name, parent) per instance, so a shallow copy is as good; a nested
    serializer is not allowed here.
    """

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = {}
        for name, field in self._declared_fields.items():
            if isinstance(field, serializers.BaseSerializer):
                raise TypeError(f"{type(self).__name__}.{name} is a nested serializer")
            fields[name] = copy.copy(field)
        return fields


class MessageInputSerializer(FlatSerializer):
    """Exactly one of text / quick_reply; any other key is ignored."""

    # Emptiness, length and control characters are the service's checks (one place).
    text = StrictCharField(required=False, allow_blank=True, trim_whitespace=False)
    quick_reply = StrictCharField(required=False, max_length=64)


class ConversationCreateSerializer(serializers.Serializer):
    title = StrictCharField(
        required=False, allow_blank=True, max_length=TITLE_MAX_CHARS
    )


class ConversationRenameSerializer(serializers.Serializer):
    title = StrictCharField(allow_blank=True, max_length=TITLE_MAX_CHARS)


class CredentialsSerializer(serializers.Serializer):
    username = StrictCharField(max_length=150)
    password = StrictCharField(max_length=1024, trim_whitespace=False)


class MessageSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    role = serializers.CharField()
    text = serializers.CharField()
    redactions = serializers.DictField(child=serializers.IntegerField())
    source = serializers.CharField()  # type: ignore[assignment]  # shadows Field.source in the stubs only (drf-stubs#158)
    status = serializers.CharField()
    notice = serializers.CharField()
    quick_replies = QuickReplySerializer(many=True)
    created_at = serializers.DateTimeField()


class ConversationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    status = serializers.CharField(source="effective_status")
    created_at = serializers.DateTimeField()
    last_activity_at = serializers.DateTimeField()
    closed_at = serializers.DateTimeField(allow_null=True)


class ConversationDetailSerializer(ConversationSerializer):
    messages = MessageSerializer(many=True)


class UserMessageOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    text = serializers.CharField()
    redactions = serializers.DictField(child=serializers.IntegerField())


class ReplyOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    text = serializers.CharField()
    source = serializers.ChoiceField(choices=["rules", "llm", "fallback"])  # type: ignore[assignment]  # shadows Field.source in the stubs only (drf-stubs#158)
    quick_replies = QuickReplySerializer(many=True)
    notice = serializers.CharField()


class MessageSendOutSerializer(serializers.Serializer):
    conversation_id = serializers.IntegerField(
        help_text="The conversation holding the turn: a new one continuing the "
        "conversation posted to when that one had closed after inactivity."
    )
    user_message = UserMessageOutSerializer()
    reply = ReplyOutSerializer()


class AccountSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField()


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField()
    message = serializers.CharField()
    fields = serializers.ListField(child=serializers.CharField(), required=False)  # type: ignore[assignment]  # shadows Serializer.fields in the stubs only (drf-stubs#78)
    types = serializers.ListField(child=serializers.CharField(), required=False)
