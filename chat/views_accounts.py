"""Account pages: sign-up, login, logout and password change (server-rendered)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordChangeForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from chat.exceptions import SignupInvalid
from chat.forms import BoundedPasswordChangeForm, LoginForm, SignupForm
from chat.services_accounts import account_signup, password_changed

# The session stores this backend so that the user is re-checked (is_active) on
# every request by Django's ModelBackend, whichever backend authenticated first.
SESSION_BACKEND = "django.contrib.auth.backends.ModelBackend"


def _add_signup_errors(form: SignupForm, exc: SignupInvalid) -> None:
    field_names = {"username": "username", "password": "password1"}
    for name in exc.fields:
        hints = exc.hints or [f"Please check the {name}."]
        form.add_error(field_names.get(name), hints)


@sensitive_post_parameters("password1", "password2")
@csrf_protect
@never_cache
@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if not settings.ALLOW_SIGNUP:
        return render(request, "registration/signup_closed.html", status=404)
    if request.user.is_authenticated:
        return redirect("chat:conversation-list")
    form = SignupForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            user = account_signup(
                username=form.cleaned_data["username"],
                password=form.cleaned_data["password1"],
                request=request,
            )
        except SignupInvalid as exc:
            _add_signup_errors(form, exc)
        else:
            login(request, user, backend=SESSION_BACKEND)
            return redirect("chat:conversation-list")
    status = 400 if request.method == "POST" else 200
    return render(request, "registration/signup.html", {"form": form}, status=status)


class LoginView(auth_views.LoginView):
    """Django's login (axes counts failures; the session key is cycled)."""

    form_class = LoginForm
    redirect_authenticated_user = True
    template_name = "registration/login.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["allow_signup"] = settings.ALLOW_SIGNUP
        return context


class LogoutView(auth_views.LogoutView):
    """POST only (Django 5): flushes the server-side session."""

    next_page = "chat:login"  # a URL name: resolve_url() reverses it


class PasswordChangeView(auth_views.PasswordChangeView):
    """Django's password change; other sessions of the user stop working."""

    form_class = BoundedPasswordChangeForm
    success_url = reverse_lazy("chat:password-change-done")
    template_name = "registration/password_change_form.html"

    def form_valid(self, form: PasswordChangeForm) -> HttpResponse:
        response = super().form_valid(form)
        password_changed(user=self.request.user, request=self.request)
        return response


class PasswordChangeDoneView(auth_views.PasswordChangeDoneView):
    template_name = "registration/password_change_done.html"
