"""Ops admin: breaker controls, the 24-hour dashboard, alerts, job runs, backups, keys.

The breaker page calls the LLM pipeline's operator API (contract F), which audits each
action; the dashboard draws MetricSample series as inline SVG. Record admins are
read-only: these rows are evidence.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from ops import charts, selectors
from ops.forms import BreakerActionForm
from ops.models import (
    Alert,
    BackupRecord,
    BreakerControl,
    Dashboard,
    IntegrityCheck,
    JobRun,
    KeyRecord,
)
from ops.sampling import DASHBOARD_SERIES


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "rule",
        "severity",
        "value",
        "created_at",
        "resolved_at",
        "incident_id",
    )
    list_filter = ("severity", "rule", ("resolved_at", admin.EmptyFieldListFilter))
    date_hierarchy = "created_at"


@admin.register(JobRun)
class JobRunAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "job",
        "outcome",
        "started_at",
        "finished_at",
        "error_code",
        "counts",
    )
    list_filter = ("job", "outcome")
    date_hierarchy = "started_at"


@admin.register(BackupRecord)
class BackupRecordAdmin(ReadOnlyAdmin):
    list_display = ("id", "created_at", "size_bytes", "key_id", "verified", "sha256")


@admin.register(KeyRecord)
class KeyRecordAdmin(ReadOnlyAdmin):
    list_display = ("key_id", "purpose", "created_at", "retired_at", "fingerprint")


@admin.register(IntegrityCheck)
class IntegrityCheckAdmin(ReadOnlyAdmin):
    list_display = ("id", "created_at", "ok", "quick_check", "cipher_errors")


BREAKER_CALLS = {
    "reset": "breaker_reset",
    "force_open": "breaker_force_open",
    "force_close": "breaker_force_close",
    "disable": "breaker_disable",
}


@admin.register(BreakerControl)
class BreakerControlAdmin(ReadOnlyAdmin):
    """The breaker page: state, recent transitions, and audited operator actions."""

    def changelist_view(
        self, request: HttpRequest, extra_context: Any = None
    ) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        from chat import breaker

        form = BreakerActionForm(request.POST or None)
        if request.method == "POST":
            if not request.user.has_perm("ops.change_breakercontrol"):
                raise PermissionDenied
            if form.is_valid():
                action = form.cleaned_data["action"]
                operate = getattr(breaker, BREAKER_CALLS[action])
                snapshot = operate(
                    actor=request.user,
                    reason=form.cleaned_data["reason"],
                    request=request,
                )
                self.message_user(
                    request,
                    f"Breaker {action.replace('_', ' ')}: now {snapshot.state}.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(
                    reverse("admin:ops_breakercontrol_changelist")
                )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "LLM circuit breaker",
            "snapshot": breaker.breaker_snapshot(),
            "transitions": breaker.breaker_transitions(limit=50),
            "form": form,
            "can_act": request.user.has_perm("ops.change_breakercontrol"),
        }
        return TemplateResponse(request, "ops/admin_breaker.html", context)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("ops.change_breakercontrol")


@admin.register(Dashboard)
class DashboardAdmin(ReadOnlyAdmin):
    """The last 24 hours of the main series, as server-rendered SVG charts."""

    def changelist_view(
        self, request: HttpRequest, extra_context: Any = None
    ) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        now = timezone.now()
        names = [name for name, _ in DASHBOARD_SERIES]
        series = selectors.samples_since(series=names, since=now - timedelta(hours=24))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Operations dashboard (last 24 hours)",
            "charts": [
                charts.line_chart(title=label, points=series[name], end=now)
                for name, label in DASHBOARD_SERIES
            ],
            "alerts": selectors.alerts_open(),
            "job_runs": selectors.job_runs_recent(limit=15),
            "backup": selectors.backup_latest(),
            "integrity": selectors.integrity_latest(),
            "snapshot": selectors.breaker_snapshot_now(),
        }
        return TemplateResponse(request, "ops/admin_dashboard.html", context)
