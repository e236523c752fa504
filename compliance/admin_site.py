"""The admin site: Django's, plus a second factor for staff (see compliance/mfa.py).

Every admin view (except logout and the MFA pages themselves) sends a staff user who
has not yet passed MFA to enrollment (no device) or verification; ``has_permission``
refuses them as a second line. Login itself goes through django-axes.
"""

from __future__ import annotations

from functools import update_wrapper
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, URLResolver, path, reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect

from compliance import mfa


class StepSyncAdminSite(admin.AdminSite):
    site_header = "Step Sync administration"
    site_title = "Step Sync admin"

    def has_permission(self, request: HttpRequest) -> bool:
        return super().has_permission(request) and not mfa.mfa_pending(request.user)

    def mfa_redirect(self, request: HttpRequest) -> HttpResponseRedirect:
        """Where a staff member who still owes the second factor is sent."""
        name = "mfa-verify" if mfa.mfa_enrolled(request.user) else "mfa-enroll"
        url = reverse(f"{self.name}:{name}", current_app=self.name)
        query = urlencode({"next": request.get_full_path()})
        return HttpResponseRedirect(f"{url}?{query}")

    def admin_view(self, view: Any, cacheable: bool = False) -> Any:
        protected = super().admin_view(view, cacheable)

        def inner(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if mfa.mfa_pending(request.user):
                logout_url = reverse(f"{self.name}:logout", current_app=self.name)
                if request.path == logout_url:
                    return self.logout(request)  # signing out needs no second factor
                return self.mfa_redirect(request)
            return protected(request, *args, **kwargs)

        return update_wrapper(inner, protected)

    def get_urls(self) -> list[URLPattern | URLResolver]:
        from compliance import views_mfa

        def own(view: Any) -> Any:
            def inner(request: HttpRequest) -> HttpResponse:
                return view(request, site=self)

            return never_cache(csrf_protect(update_wrapper(inner, view)))

        return [
            path("mfa/enroll/", own(views_mfa.enroll), name="mfa-enroll"),
            path("mfa/verify/", own(views_mfa.verify), name="mfa-verify"),
            *super().get_urls(),
        ]
