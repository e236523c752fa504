"""Chat domain errors: fixed, PHI-free messages; each knows its HTTP status and body.

Views (HTML and JSON) map these with ``exc.status_code`` and ``exc.payload()``, so the
web UI, the DRF API and the async streaming view answer the same way.
"""

from __future__ import annotations

from typing import Any


class ChatError(Exception):
    """Base of chat domain errors; ``code`` is stable, the message fixed."""

    status_code = 400
    code = "chat_error"
    message = "The request could not be processed."

    def __init__(self) -> None:
        super().__init__(self.code)

    def payload(self) -> dict[str, Any]:
        """The JSON error body: ``{"error": code, "message": fixed text}``."""
        return {"error": self.code, "message": self.message}


class MessageInvalid(ChatError):
    """The message text or quick reply failed validation (reason is a fixed code)."""

    status_code = 400
    code = "invalid"
    message = "The message is not valid."

    def __init__(self, reason: str, field: str = "text") -> None:
        super().__init__()
        self.reason = reason
        self.field = field

    def payload(self) -> dict[str, Any]:
        return {**super().payload(), "fields": [self.field], "reason": self.reason}


class PHIBlocked(ChatError):
    """Strict mode (or a sanitizer failure) blocked the message; types only."""

    status_code = 422
    code = "phi_blocked"
    message = "The message was not sent because it contains identifiers."

    def __init__(self, types: tuple[str, ...]) -> None:
        super().__init__()
        self.types = tuple(types)

    def payload(self) -> dict[str, Any]:
        return {**super().payload(), "types": list(self.types)}


class ConversationClosed(ChatError):
    """The conversation timed out and is read-only; start a new one."""

    status_code = 409
    code = "conversation_closed"
    message = "This conversation has ended. Start a new one."


class ConversationOnHold(ChatError):
    """The conversation is under legal hold and cannot be deleted now."""

    status_code = 409
    code = "conversation_locked"
    message = "This conversation cannot be deleted at the moment."


class MessageInProgress(ChatError):
    """A request with the same idempotency key is still being answered."""

    status_code = 409
    code = "in_progress"
    message = "This message is still being processed. Retry shortly."


class SignupClosed(ChatError):
    """Sign-up is switched off (ALLOW_SIGNUP=false)."""

    status_code = 403
    code = "signup_closed"
    message = "Sign-up is not available."


class SignupInvalid(ChatError):
    """Sign-up data failed validation; names the fields, never the values."""

    status_code = 400
    code = "invalid"
    message = "The request is not valid."

    def __init__(self, fields: list[str], hints: list[str] | None = None) -> None:
        super().__init__()
        self.fields = sorted(set(fields))
        self.hints = list(hints or [])

    def payload(self) -> dict[str, Any]:
        body = {**super().payload(), "fields": self.fields}
        if self.hints:
            body["hints"] = self.hints
        return body
