"""Small factory functions with obviously fake data."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model

PASSWORD = "correct horse battery staple 42"


def make_user(*, username: str = "user", password: str = PASSWORD, **kw: Any) -> Any:
    """Create an active user; e-mail on example.org."""
    kw.setdefault("email", f"{username}@example.org")
    return get_user_model().objects.create_user(
        username=username, password=password, **kw
    )
