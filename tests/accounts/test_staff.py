"""accounts.staff.staff_user: the admin's actor is a signed-in, active staff User."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.test import RequestFactory

from accounts.staff import staff_user

pytestmark = pytest.mark.django_db


def request_by(user: Any) -> Any:
    request = RequestFactory().get("/admin/")
    request.user = user
    return request


def test_staff_user_returns_the_staff_member(staff_member: Any) -> None:
    assert staff_user(request_by(staff_member)) == staff_member


def test_staff_user_refuses_an_anonymous_request() -> None:
    with pytest.raises(PermissionDenied):
        staff_user(request_by(AnonymousUser()))


def test_staff_user_refuses_a_user_who_is_not_staff(patient: Any) -> None:
    with pytest.raises(PermissionDenied):
        staff_user(request_by(patient))


def test_staff_user_refuses_a_deactivated_staff_member(staff_member: Any) -> None:
    staff_member.is_active = False

    with pytest.raises(PermissionDenied):
        staff_user(request_by(staff_member))
