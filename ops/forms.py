"""Forms of the ops admin pages."""

from __future__ import annotations

from django import forms

BREAKER_ACTIONS = (
    ("reset", "Reset (closed, counters cleared)"),
    ("force_open", "Force open (stop all LLM calls; users get the fallback)"),
    ("force_close", "Force close"),
    ("disable", "Disable the breaker (admit every call)"),
)


class BreakerActionForm(forms.Form):
    action = forms.ChoiceField(choices=BREAKER_ACTIONS)
    reason = forms.CharField(
        min_length=3,
        max_length=200,
        help_text=(
            "Required. Stored as a short code (letters, digits, underscores): "
            "do not write personal data here."
        ),
    )
