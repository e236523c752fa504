"""Create or update the "Compliance officers" group (idempotent; also runs on migrate)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from compliance.roles import roles_setup


class Command(BaseCommand):
    help = "Create or update the Compliance officers group and its view permissions."

    def handle(self, *args: Any, **options: Any) -> None:
        group = roles_setup()
        count = group.permissions.count()
        self.stdout.write(f"setup_roles group={group.name!r} permissions={count}")
