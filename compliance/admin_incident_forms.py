"""Forms and list filters of the incident admin: report fields, timeline, deadlines.

Text typed here is sanitized by compliance.incidents on save; the forms say so.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from compliance import incidents
from compliance.models import DataCategory, Incident, IncidentStatus
from compliance.selectors_incidents import DUE_SOON_DAYS, incidents_with_deadlines_due

SANITIZER_NOTE = (
    "Text is checked for identifiers and redacted on save: never type names, "
    "e-mail addresses, record numbers or other PHI here."
)


class IncidentForm(forms.ModelForm):
    data_categories = forms.MultipleChoiceField(
        choices=DataCategory.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    state_counts = forms.JSONField(
        required=False,
        help_text='Affected residents per state code, e.g. {"CA": 120, "NV": 3}.',
    )

    class Meta:
        model = Incident
        fields = [
            "title",
            "severity",
            "category",
            "detected_at",
            "description",
            "users_affected",
            "data_categories",
            "root_cause",
            "fix_applied",
            "lessons_learned",
            "is_breach",
            "individuals_affected",
            "state_counts",
            "individuals_notified_at",
            "hhs_notified_at",
            "media_notified_at",
        ]
        widgets = {"title": forms.TextInput(attrs={"size": 80, "maxlength": 200})}

    def clean_state_counts(self) -> dict[str, int]:
        return self.cleaned_data.get("state_counts") or {}

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        try:
            data["state_counts"] = incidents.validate_scope(
                data_categories=list(data.get("data_categories") or []),
                individuals_affected=data.get("individuals_affected") or 0,
                state_counts=data.get("state_counts") or {},
            )
        except ValidationError as exc:
            self.add_error(None, exc)
        return data


class TimelineForm(forms.Form):
    to_status = forms.ChoiceField(required=False, label="Status change")
    note = forms.CharField(
        required=False,
        max_length=incidents.TEXT_MAX,
        widget=forms.Textarea(attrs={"rows": 5, "cols": 80}),
        help_text=SANITIZER_NOTE,
    )

    def __init__(self, *args: Any, incident: Incident, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        labels = dict(IncidentStatus.choices)
        allowed = sorted(incidents.allowed_transitions(incident.status))
        to_status = self.fields["to_status"]
        assert isinstance(to_status, forms.ChoiceField)
        to_status.choices = [("", "no change")] + [
            (status, labels[status]) for status in allowed
        ]

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if not data.get("to_status") and not (data.get("note") or "").strip():
            raise ValidationError("Choose a status change or write a note.")
        return data


class DeadlineFilter(admin.SimpleListFilter):
    title = "notification deadline"
    parameter_name = "deadline"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("overdue", "Overdue"), ("due", f"Due within {DUE_SOON_DAYS} days")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet | None:
        if self.value() not in ("overdue", "due"):
            return None
        due = incidents_with_deadlines_due(
            within_days=DUE_SOON_DAYS, now=timezone.now()
        )
        ids = {d.incident_id for d in due if d.overdue or self.value() == "due"}
        return queryset.filter(pk__in=ids)
