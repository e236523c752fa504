"""Admin for incidents: deadlines, the append-only timeline, report download.

Incident managers (superusers, or staff with ``compliance.change_incident``) edit;
compliance officers (view permissions only) read. Nobody deletes. Every write goes
through compliance.incidents, which sanitizes text and audits the change.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from accounts.staff import staff_user
from compliance import incidents
from compliance.admin_incident_forms import (
    SANITIZER_NOTE,
    DeadlineFilter,
    IncidentForm,
    TimelineForm,
)
from compliance.models import Incident, IncidentUpdate
from compliance.selectors_incidents import incident_deadlines

OPEN_FIELDS = ("title", "severity", "category", "description", "detected_at")


class IncidentUpdateInline(admin.TabularInline):
    model = IncidentUpdate
    fields = ("at", "who", "status_change", "note")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    verbose_name = "timeline entry"
    verbose_name_plural = "Timeline (append-only)"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("compliance.view_incident") or (
            request.user.has_perm("compliance.change_incident")
        )

    @admin.display(description="by")
    def who(self, update: IncidentUpdate) -> str:
        if update.actor_id:
            return f"User #{update.actor_id}"
        return update.system_principal or "system"

    @admin.display(description="status")
    def status_change(self, update: IncidentUpdate) -> str:
        if not update.to_status:
            return ""
        return f"{update.from_status or '-'} → {update.to_status}"


def _deadline_cell(incident: Incident) -> str:
    if not incident.is_breach:
        return "—"
    rows = incident_deadlines(incident=incident, now=timezone.now())
    open_rows = [r for r in rows if r.required and r.done_on is None]
    if not open_rows:
        return "all notices sent" if any(r.required for r in rows) else "none required"
    return format_html_join(
        mark_safe("<br>"),
        '<span class="deadline-{}">{}: {}{} {}</span>',
        (
            (
                "overdue" if r.overdue else "open",
                r.kind,
                "OVERDUE " if r.overdue else "",
                "since" if r.overdue else "due",
                r.due.isoformat() if r.due else "-",
            )
            for r in open_rows
        ),
    )


@admin.register(Incident)
class IncidentAdmin(admin.ModelAdmin):
    form = IncidentForm
    list_display = (
        "reference",
        "short_title",
        "severity",
        "status",
        "is_breach",
        "detected_at",
        "deadlines",
    )
    list_filter = ("status", "severity", "category", "is_breach", DeadlineFilter)
    search_fields = ("reference",)
    ordering = ("-detected_at", "-id")
    inlines = [IncidentUpdateInline]
    readonly_fields = (
        "reference",
        "status",
        "contained_at",
        "resolved_at",
        "closed_at",
        "opened_by_label",
        "created_at",
        "updated_at",
        "deadline_table",
        "links",
        "report_link",
    )
    fieldsets = (
        (None, {"fields": ("reference", "status", "links")}),
        (
            "Summary",
            {
                "fields": ("title", "severity", "category", "description"),
                "description": SANITIZER_NOTE,
            },
        ),
        (
            "Times",
            {
                "fields": (
                    "detected_at",
                    "contained_at",
                    "resolved_at",
                    "closed_at",
                    "opened_by_label",
                    "created_at",
                    "updated_at",
                )
            },
        ),
        ("Scope", {"fields": ("users_affected", "data_categories")}),
        (
            "Analysis",
            {
                "fields": ("root_cause", "fix_applied", "lessons_learned"),
                "description": SANITIZER_NOTE,
            },
        ),
        (
            "Breach notification",
            {
                "fields": (
                    "is_breach",
                    "individuals_affected",
                    "state_counts",
                    "deadline_table",
                    "individuals_notified_at",
                    "hhs_notified_at",
                    "media_notified_at",
                )
            },
        ),
    )

    class Media:
        css = {"all": ("compliance/incidents_admin.css",)}

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        """Read-only viewers (compliance officers) get the report link only: the
        timeline page would refuse them."""
        fieldsets = super().get_fieldsets(request, obj)
        if self.has_change_permission(request, obj):
            return fieldsets
        head = (None, {"fields": ("reference", "status", "report_link")})
        return (head, *fieldsets[1:])

    @admin.display(description="title")
    def short_title(self, incident: Incident) -> str:
        title = incident.title or ""
        return title if len(title) <= 60 else title[:59] + "…"

    @admin.display(description="notification deadlines")
    def deadlines(self, incident: Incident) -> str:
        return _deadline_cell(incident)

    @admin.display(description="opened by")
    def opened_by_label(self, incident: Incident) -> str:
        return f"User #{incident.opened_by_id}" if incident.opened_by_id else "system"

    @admin.display(description="deadlines (from discovery)")
    def deadline_table(self, incident: Incident) -> str:
        if not incident.pk or not incident.is_breach:
            return "Not a breach: no notification deadlines."
        return format_html_join(
            mark_safe("<br>"),
            '<strong>{}</strong>: {} — due {} — <span class="deadline-{}">{}</span>',
            (
                (
                    r.label,
                    r.rule if r.required else "not required",
                    r.due.isoformat() if r.due else "-",
                    "overdue" if r.overdue else "open",
                    r.status,
                )
                for r in incident_deadlines(incident=incident, now=timezone.now())
            ),
        )

    @admin.display(description="actions")
    def report_link(self, incident: Incident) -> str:
        if not incident.pk:
            return ""
        report = reverse("admin:compliance_incident_report", args=[incident.pk])
        return format_html('<a href="{}">Download incident report</a>', report)

    @admin.display(description="actions")
    def links(self, incident: Incident) -> str:
        if not incident.pk:
            return ""
        report = reverse("admin:compliance_incident_report", args=[incident.pk])
        timeline = reverse("admin:compliance_incident_timeline", args=[incident.pk])
        return format_html(
            '<a href="{}">Download incident report</a> · '
            '<a href="{}">Add a timeline update / change status</a>',
            report,
            timeline,
        )

    def save_model(
        self, request: HttpRequest, obj: Incident, form: forms.ModelForm, change: bool
    ) -> None:
        data = form.cleaned_data
        actor = staff_user(request)
        if not change:
            opened = incidents.incident_open(
                actor=actor,
                request=request,
                **{name: data[name] for name in OPEN_FIELDS},
            )
            rest = {
                name: data[name]
                for name in form.changed_data
                if name not in OPEN_FIELDS and name in incidents.EDITABLE_FIELDS
            }
            if rest:
                opened = incidents.incident_edit(
                    incident=opened, actor=actor, changes=rest, request=request
                )
            obj.pk, obj.reference = opened.pk, opened.reference
            obj._state.adding = False
            return
        changes = {
            name: data[name]
            for name in form.changed_data
            if name in incidents.EDITABLE_FIELDS
        }
        if changes:
            incidents.incident_edit(
                incident=obj, actor=actor, changes=changes, request=request
            )

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/report/",
                wrap(self.report_view),
                name="compliance_incident_report",
            ),
            path(
                "<path:object_id>/timeline/",
                wrap(self.timeline_view),
                name="compliance_incident_timeline",
            ),
            *super().get_urls(),
        ]

    def _incident(self, request: HttpRequest, object_id: str) -> Incident:
        incident = self.get_object(request, unquote(object_id))
        if incident is None:
            raise Http404("No such incident.")
        return incident

    def report_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        incident = self._incident(request, object_id)
        if not self.has_view_or_change_permission(request, incident):
            raise PermissionDenied
        filename, text = incidents.incident_report_download(
            incident=incident, actor=staff_user(request), request=request
        )
        response = HttpResponse(text, content_type="text/markdown; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response

    def timeline_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        incident = self._incident(request, object_id)
        if not self.has_change_permission(request, incident):
            raise PermissionDenied
        form = TimelineForm(request.POST or None, incident=incident)
        if request.method == "POST" and form.is_valid():
            try:
                self._append(request, incident, form.cleaned_data)
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                self.message_user(request, "Timeline updated.", messages.SUCCESS)
                return HttpResponseRedirect(
                    reverse("admin:compliance_incident_change", args=[incident.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": incident,
            "form": form,
            "title": f"Timeline update for {incident.reference}",
            "sanitizer_note": SANITIZER_NOTE,
        }
        return TemplateResponse(
            request, "compliance/admin_incident_timeline.html", context
        )

    def _append(
        self, request: HttpRequest, incident: Incident, data: dict[str, Any]
    ) -> None:
        if data["to_status"]:
            incidents.incident_transition(
                incident=incident,
                to_status=data["to_status"],
                actor=staff_user(request),
                note=data["note"],
                request=request,
            )
        else:
            incidents.incident_add_note(
                incident=incident,
                actor=staff_user(request),
                note=data["note"],
                request=request,
            )
