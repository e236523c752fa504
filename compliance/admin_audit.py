"""Audit trail admin: read-only for everyone, filters, CSV export and chain check."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.urls import URLPattern, path, reverse
from django.views.decorators.http import require_POST

from accounts.staff import staff_user
from compliance.admin_filters import ActorFilter, DateRangeFilter
from compliance.models import AuditEvent
from compliance.services import audit_chain_verify, audit_export_csv

CSV_NAME = "audit-trail.csv"


def _csv_response(lines: Any) -> StreamingHttpResponse:
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{CSV_NAME}"'
    return response


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = (
        "seq",
        "at",
        "action",
        "outcome",
        "actor_id",
        "system_principal",
        "target_type",
        "target_id",
        "client_ip",
        "request_id",
    )
    list_filter = (
        ActorFilter,
        DateRangeFilter,
        "action",
        "outcome",
        "target_type",
        "system_principal",
    )
    search_fields = ("=target_id", "=request_id")
    search_help_text = "Exact target id or request id."
    list_per_page = 100
    show_full_result_count = False
    ordering = ("-seq",)
    actions = ["export_selected_csv"]
    readonly_fields = (*list_display, "details", "prev_mac", "mac")
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path(
                "export/", wrap(self.export_view), name="compliance_auditevent_export"
            ),
            path(
                "verify/",
                wrap(require_POST(self.verify_view)),
                name="compliance_auditevent_verify",
            ),
            *super().get_urls(),
        ]

    @admin.action(description="Export selected events as CSV", permissions=["view"])
    def export_selected_csv(
        self, request: HttpRequest, queryset: QuerySet[AuditEvent]
    ) -> StreamingHttpResponse:
        lines = audit_export_csv(
            queryset=queryset.order_by("seq"),
            actor=staff_user(request),
            request=request,
        )
        return _csv_response(lines)

    def export_view(self, request: HttpRequest) -> StreamingHttpResponse:
        """The whole filtered list (same filters and search as the change list)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        changelist = self.get_changelist_instance(request)
        queryset = changelist.get_queryset(request).order_by("seq")
        lines = audit_export_csv(
            queryset=queryset, actor=staff_user(request), request=request
        )
        return _csv_response(lines)

    def verify_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        report = audit_chain_verify(actor=staff_user(request), request=request)
        if report.ok:
            self.message_user(
                request, f"Audit chain intact: {report.checked} events checked."
            )
        elif report.broken is not None:
            self.message_user(
                request,
                f"Audit chain broken at seq {report.broken.seq}: {report.broken.kind}.",
                level=messages.ERROR,
            )
        else:
            self.message_user(
                request, "Append-only triggers are missing.", level=messages.ERROR
            )
        return HttpResponseRedirect(reverse("admin:compliance_auditevent_changelist"))
