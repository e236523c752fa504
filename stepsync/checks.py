"""System checks for cross-field settings rules (run by `manage.py check --deploy`)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

from stepsync.secrets import DATABASE_KEY, SecretError, read_secret


def _uses_sqlcipher() -> bool:
    return settings.DATABASES["default"]["ENGINE"] == "stepsync.db.sqlcipher"


@register(Tags.security, Tags.database, deploy=False)
def check_database_encryption(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """Encryption off is refused unless DEBUG; the key must be present and valid."""
    errors: list[Any] = []
    engine = settings.DATABASES["default"]["ENGINE"]
    if engine == "django.db.backends.sqlite3" and not settings.DEBUG:
        errors.append(
            Error(
                "DATABASE_ENCRYPTION_ENABLED=false is only allowed with DEBUG=true.",
                hint="Unset DATABASE_ENCRYPTION_ENABLED, or use DATABASE_URL.",
                id="stepsync.E001",
            )
        )
    if _uses_sqlcipher():
        try:
            read_secret(DATABASE_KEY)
        except SecretError as exc:
            errors.append(Error(str(exc), id="stepsync.E002"))
    return errors


@register(Tags.security)
def check_llm_url(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """The LLM endpoint must use https unless it is on the loopback interface."""
    from urllib.parse import urlsplit

    parts = urlsplit(settings.GROQ_API_BASE_URL)
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme == "https" or (parts.scheme == "http" and loopback):
        return []
    return [
        Error(
            "GROQ_API_BASE_URL must use https:// (http:// only for a loopback host).",
            id="stepsync.E003",
        )
    ]


@register(Tags.security)
def check_debug_hosts(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """DEBUG must not be on with production hosts (it shows settings and tracebacks)."""
    local = {"127.0.0.1", "localhost", "::1", "testserver"}
    if settings.DEBUG and set(settings.ALLOWED_HOSTS) - local:
        return [Error("DEBUG=true with non-local ALLOWED_HOSTS.", id="stepsync.E004")]
    return []


@register(Tags.security, deploy=True)
def check_secure_cookies(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """Secure cookies must be on in production."""
    if settings.SECURE_COOKIES:
        return []
    return [
        Warning(
            "SECURE_COOKIES is off: cookies may travel over plain HTTP.",
            id="stepsync.W001",
        )
    ]
