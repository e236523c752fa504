"""App config for chat: conversations, the assistant and the LLM pipeline."""

from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "chat"
    verbose_name = "Chat"

    def ready(self) -> None:
        from chat.sanitizer import sanitize
        from compliance import text_guard

        # Incident text in compliance is redacted by our sanitizer (compliance
        # cannot import chat); see compliance/text_guard.py.
        text_guard.register(lambda text: sanitize(text).text)
