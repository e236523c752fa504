"""Admin list filters for the audit trail: an actor id box and a from/to date range."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

# ASCII digits only (str.isdigit() accepts "²", which int() then refuses), and few
# enough of them to fit a bigint column.
USER_ID = re.compile(r"[0-9]{1,18}")


def _last(value: Any) -> str:
    if isinstance(value, list | tuple):
        value = value[-1] if value else ""
    return str(value or "").strip()


class _InputFilter(admin.ListFilter):
    """A filter rendered as a small GET form that keeps the other query parameters."""

    template = "admin/compliance/input_filter.html"
    fields: tuple[tuple[str, str, str], ...] = ()  # (parameter, label, input type)

    def __init__(
        self, request: HttpRequest, params: dict[str, Any], model: Any, model_admin: Any
    ) -> None:
        super().__init__(request, params, model, model_admin)
        for name in self._names():
            if name in params:
                self.used_parameters[name] = _last(params.pop(name))

    def _names(self) -> list[str]:
        return [name for name, _, _ in self.fields]

    def expected_parameters(self) -> list[str | None]:
        return [*self._names()]

    def submitted(self, name: str) -> str:
        """The submitted text of one parameter ("" when absent)."""
        value = self.used_parameters.get(name, "")
        return value if isinstance(value, str) else ""

    def has_output(self) -> bool:
        return True

    def choices(self, changelist: Any) -> Iterator[dict[str, Any]]:
        own = {*self._names(), "p", "e"}
        keep = [(k, v) for k, v in changelist.params.items() if k not in own]
        yield {
            "inputs": [
                {
                    "name": n,
                    "label": label,
                    "type": t,
                    "value": self.submitted(n),
                }
                for n, label, t in self.fields
            ],
            "hidden": [(k, _last(v)) for k, v in keep],
        }


class ActorFilter(_InputFilter):
    title = "actor (user id)"
    fields = (("actor_id", "User id", "number"),)

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.submitted("actor_id")
        if not USER_ID.fullmatch(value):
            return queryset
        return queryset.filter(actor_id=int(value))


def _day(value: str) -> dt.datetime | None:
    try:
        return dt.datetime.combine(dt.date.fromisoformat(value), dt.time(), dt.UTC)
    except ValueError:
        return None


class DateRangeFilter(_InputFilter):
    """Events from the start of ``at_from`` to the end of ``at_to`` (UTC days)."""

    title = "date (UTC)"
    fields = (("at_from", "From", "date"), ("at_to", "To", "date"))

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        start = _day(self.submitted("at_from"))
        end = _day(self.submitted("at_to"))
        if start is not None:
            queryset = queryset.filter(at__gte=start)
        if end is not None:
            queryset = queryset.filter(at__lt=end + dt.timedelta(days=1))
        return queryset
