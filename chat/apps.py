"""App config for chat: conversations, the assistant and the LLM pipeline."""

from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "chat"
    verbose_name = "Chat"
