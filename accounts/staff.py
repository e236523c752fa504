"""The staff member behind an admin request, as a ``User`` (never anonymous)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from accounts.models import User


def staff_user(request: HttpRequest) -> User:
    """Return the request's signed-in, active staff user; raise PermissionDenied
    for anyone else.

    The admin site only lets active staff through to its views, so this refuses
    only if a view is wired outside ``admin_view``: then it is a 403 rather than an
    anonymous or non-staff actor reaching a service and the audit trail.
    """
    user = request.user
    if isinstance(user, User) and user.is_active and user.is_staff:
        return user
    raise PermissionDenied
