"""The user model: Django's user with usernames unique regardless of case."""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.db.models.functions import Lower


def normalize_username(username: str) -> str:
    """Usernames compare case-insensitively; surrounding whitespace is dropped."""
    return username.strip()


class CaseInsensitiveUserManager(UserManager["User"]):
    """Looks users up by username regardless of case (login, axes, sign-up checks)."""

    def get_by_natural_key(self, username: str | None) -> User:
        return self.get(username__iexact=normalize_username(username or ""))

    def username_taken(self, username: str) -> bool:
        return self.filter(username__iexact=normalize_username(username)).exists()

    def create_user(
        self,
        username: str,
        email: str | None = None,
        password: str | None = None,
        **extra: Any,
    ) -> User:
        return super().create_user(
            normalize_username(username), email, password, **extra
        )


class User(AbstractUser):
    """A person who chats, or a staff member; holds no health data itself."""

    objects: ClassVar[CaseInsensitiveUserManager] = CaseInsensitiveUserManager()

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
        constraints = [
            models.UniqueConstraint(Lower("username"), name="user_username_ci_unique"),
        ]

    def __str__(self) -> str:
        return f"User #{self.pk}"
