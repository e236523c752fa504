"""Admin MFA pages: TOTP enrollment (QR code, recovery codes shown once) and checks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django import forms
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.debug import sensitive_post_parameters

from compliance import mfa

if TYPE_CHECKING:
    from compliance.admin_site import StepSyncAdminSite


class TokenForm(forms.Form):
    token = forms.CharField(
        max_length=16,
        strip=True,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code"}),
    )


def _next_url(request: HttpRequest, site: StepSyncAdminSite) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    allowed = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if allowed else reverse(f"{site.name}:index", current_app=site.name)


def _staff_only(request: HttpRequest, site: StepSyncAdminSite) -> HttpResponse | None:
    user = request.user
    if not (user.is_authenticated and user.is_active and user.is_staff):
        login = reverse(f"{site.name}:login", current_app=site.name)
        return redirect_to_login(request.get_full_path(), login)
    if not mfa.mfa_pending(user):
        return HttpResponseRedirect(_next_url(request, site))
    return None


def _context(request: HttpRequest, site: StepSyncAdminSite, **extra: object) -> dict:
    return {**site.each_context(request), "next": _next_url(request, site), **extra}


@sensitive_post_parameters("token")
def enroll(request: HttpRequest, *, site: StepSyncAdminSite) -> HttpResponse:
    if (refused := _staff_only(request, site)) is not None:
        return refused
    if mfa.mfa_enrolled(request.user):
        return site.mfa_redirect(request)
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        codes = mfa.totp_enroll_confirm(
            user=request.user, token=form.cleaned_data["token"], request=request
        )
        if codes is not None:
            context = _context(request, site, codes=codes, title="Recovery codes")
            return render(request, "admin/compliance/mfa_codes.html", context)
        form.add_error("token", "That code did not match. Try the current one.")
    device = mfa.totp_device_pending(user=request.user)
    context = _context(
        request,
        site,
        form=form,
        qr=mfa.totp_qr_data_uri(device),
        secret=mfa.totp_secret_text(device),
        title="Set up two-factor authentication",
    )
    return render(request, "admin/compliance/mfa_enroll.html", context)


@sensitive_post_parameters("token")
def verify(request: HttpRequest, *, site: StepSyncAdminSite) -> HttpResponse:
    if (refused := _staff_only(request, site)) is not None:
        return refused
    if not mfa.mfa_enrolled(request.user):
        return site.mfa_redirect(request)
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        token = form.cleaned_data["token"]
        if mfa.mfa_verify(user=request.user, token=token, request=request):
            return HttpResponseRedirect(_next_url(request, site))
        form.add_error("token", "That code did not work.")
    context = _context(request, site, form=form, title="Two-factor check")
    return render(request, "admin/compliance/mfa_verify.html", context)
