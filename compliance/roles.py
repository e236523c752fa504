"""The "Compliance officers" group and its permissions, kept in step after every migrate.

Chosen over a data migration so that permissions of models added later (incidents,
retention runs, anything new in compliance) are granted without another migration:
the group gets every ``view_*`` permission of the compliance app, never a change or
delete permission, never conversation content and never legal holds (those are
granted per person). Nor django-axes' own records: they hold the typed username,
while the audit trail shows the same failures with pseudonymised usernames. Runs on
post_migrate and as ``manage.py setup_roles``.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group, Permission
from django.db.models import Q

OFFICERS = "Compliance officers"
WITHHELD = ("view_conversation_content",)


def officer_permissions() -> list[Permission]:
    """Every view permission of the compliance app, except conversation content."""
    query = Q(content_type__app_label="compliance", codename__startswith="view_")
    return list(
        Permission.objects.filter(query).exclude(codename__in=WITHHELD).order_by("pk")
    )


def roles_setup() -> Group:
    """Create or update the officers group (idempotent); drop anything not listed."""
    group, _ = Group.objects.get_or_create(name=OFFICERS)
    group.permissions.set(officer_permissions())
    return group


def on_post_migrate(sender: Any, using: str = "default", **kwargs: Any) -> None:
    if getattr(sender, "name", "") == "compliance":
        roles_setup()
