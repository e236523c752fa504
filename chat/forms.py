"""HTML forms of the web UI: sign-up, login, password change, composer, rename."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm, PasswordChangeForm
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.validators import MaxLengthValidator

from chat.services_accounts import PASSWORD_MAX_CHARS
from chat.services_conversations import TITLE_MAX_CHARS

QUICK_REPLY_MAX_CHARS = 64
IDEMPOTENCY_KEY_MAX_CHARS = 64


def _password_field(label: str, *, new: bool = False) -> forms.CharField:
    autocomplete = "new-password" if new else "current-password"
    return forms.CharField(
        label=label,
        strip=False,
        max_length=PASSWORD_MAX_CHARS,
        widget=forms.PasswordInput(attrs={"autocomplete": autocomplete}),
    )


class SignupForm(forms.Form):
    """Username and password twice; the service applies the password validators."""

    username = forms.CharField(
        label="Username",
        max_length=150,
        validators=[UnicodeUsernameValidator()],
        help_text="Letters, digits and @ . + - _ only. Don't use your real name.",
        widget=forms.TextInput(attrs={"autocomplete": "username", "autofocus": True}),
    )
    password1 = _password_field("Password", new=True)
    password2 = _password_field("Password again", new=True)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        first, second = cleaned.get("password1"), cleaned.get("password2")
        if first and second and first != second:
            self.add_error("password2", "The two passwords don't match.")
        return cleaned


class LoginForm(AuthenticationForm):
    """Django's login form with a bounded password, so huge input is never hashed."""

    password = _password_field("Password")


class BoundedPasswordChangeForm(PasswordChangeForm):
    """Django's password change form with bounded fields."""

    old_password = _password_field("Current password")
    new_password1 = _password_field("New password", new=True)
    new_password2 = _password_field("New password again", new=True)


class MessageForm(forms.Form):
    """The composer: typed text, or the value of a quick-reply button."""

    text = forms.CharField(
        label="Your message",
        required=False,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    quick_reply = forms.CharField(
        required=False, max_length=QUICK_REPLY_MAX_CHARS, widget=forms.HiddenInput
    )
    idempotency_key = forms.CharField(
        required=False, max_length=IDEMPOTENCY_KEY_MAX_CHARS, widget=forms.HiddenInput
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limit = settings.MAX_MESSAGE_CHARS
        field = self.fields["text"]
        assert isinstance(field, forms.CharField)
        field.max_length = limit
        field.validators.append(MaxLengthValidator(limit))
        field.widget.attrs["maxlength"] = str(limit)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        empty = not cleaned.get("text") and not cleaned.get("quick_reply")
        if empty and "text" not in self.errors:
            self.add_error("text", "Type a message or choose one of the options.")
        return cleaned


class RenameForm(forms.Form):
    """A conversation's new title (user text: sanitized by the service)."""

    title = forms.CharField(label="New name", max_length=TITLE_MAX_CHARS, strip=True)
