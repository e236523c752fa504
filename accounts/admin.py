"""Admin registration for the user model (Django's user admin + deactivation)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.models import User
from accounts.services import user_deactivate
from accounts.staff import staff_user


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    """Django's user admin with an action that also ends sessions and tokens."""

    actions = ["deactivate_users"]

    @admin.action(
        description="Deactivate selected users and end their sessions",
        permissions=["change"],
    )
    def deactivate_users(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        actor = staff_user(request)
        users = sessions = 0
        for user in queryset:
            sessions += user_deactivate(user=user, actor=actor, request=request)
            users += 1
        self.message_user(
            request,
            f"Deactivated {users} user(s); ended {sessions} session(s).",
            messages.SUCCESS,
        )
