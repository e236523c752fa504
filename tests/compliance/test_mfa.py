"""MFA for staff: no admin without a verified TOTP device; enrollment; recovery codes."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from compliance import mfa
from compliance.models import AuditAction, AuditEvent
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db
INDEX = reverse("admin:index")
ENROLL = reverse("admin:mfa-enroll")
VERIFY = reverse("admin:mfa-verify")
CHANGELIST = reverse("admin:compliance_auditevent_changelist")


def current_token(device: TOTPDevice, *, offset: int = 0) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = totp.time + offset * device.step
    return f"{totp.token():0{device.digits}d}"


def password_login(user: Any) -> Client:
    client = Client()
    client.post(
        reverse("admin:login"), {"username": user.username, "password": PASSWORD}
    )
    assert "_auth_user_id" in client.session
    return client


@pytest.fixture
def superuser(db: None) -> Any:
    from tests.factories import make_user

    return make_user(username="root_admin", is_staff=True, is_superuser=True)


def test_staff_without_a_device_are_sent_to_enrollment(superuser: Any) -> None:
    client = password_login(superuser)

    response = client.get(CHANGELIST)

    assert response.status_code == 302
    assert response["Location"].startswith(ENROLL)


def test_staff_with_a_device_are_sent_to_verification(superuser: Any) -> None:
    TOTPDevice.objects.create(user=superuser, name="admin", confirmed=True)
    client = password_login(superuser)

    response = client.get(INDEX)

    assert response.status_code == 302
    assert response["Location"].startswith(VERIFY)


def test_the_enrollment_page_shows_a_qr_image_and_no_inline_script(
    superuser: Any,
) -> None:
    client = password_login(superuser)

    body = client.get(ENROLL).content.decode()

    assert 'src="data:image/svg+xml' in body
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", body)


def test_enroll_then_the_admin_opens_and_ten_codes_are_shown(superuser: Any) -> None:
    client = password_login(superuser)
    client.get(ENROLL)
    device = TOTPDevice.objects.get(user=superuser)

    response = client.post(ENROLL, {"token": current_token(device), "next": CHANGELIST})

    assert (
        len(re.findall(r"<li><code>[a-z2-7]{8}</code></li>", response.content.decode()))
        == 10
    )
    assert client.get(CHANGELIST).status_code == 200
    event = AuditEvent.objects.get(action=AuditAction.MFA_ENROLL)
    assert (event.actor_id, event.details) == (
        superuser.pk,
        {"device": "totp", "recovery_codes": 10},
    )


def test_a_wrong_enrollment_code_is_refused_and_audited(superuser: Any) -> None:
    client = password_login(superuser)
    client.get(ENROLL)

    client.post(ENROLL, {"token": "000000x"})

    assert client.get(INDEX).status_code == 302
    assert AuditEvent.objects.filter(action=AuditAction.MFA_VERIFY_FAILED).count() == 1
    assert TOTPDevice.objects.get(user=superuser).confirmed is False


def test_verification_with_the_app_code_opens_the_admin(superuser: Any) -> None:
    device = TOTPDevice.objects.create(user=superuser, name="admin", confirmed=True)
    client = password_login(superuser)

    response = client.post(VERIFY, {"token": current_token(device), "next": CHANGELIST})

    assert response["Location"] == CHANGELIST
    assert client.get(CHANGELIST).status_code == 200


def test_a_wrong_code_keeps_the_admin_closed_and_is_audited(superuser: Any) -> None:
    device = TOTPDevice.objects.create(user=superuser, name="admin", confirmed=True)
    client = password_login(superuser)

    client.post(VERIFY, {"token": current_token(device, offset=20)})

    assert client.get(INDEX).status_code == 302
    event = AuditEvent.objects.get(action=AuditAction.MFA_VERIFY_FAILED)
    assert event.details == {"stage": "verify"}


def test_a_recovery_code_works_exactly_once(superuser: Any) -> None:
    TOTPDevice.objects.create(user=superuser, name="admin", confirmed=True)
    code = mfa.recovery_codes_issue(user=superuser)[0]
    first, second = password_login(superuser), password_login(superuser)

    first.post(VERIFY, {"token": code.upper()})
    second.post(VERIFY, {"token": code})

    assert first.get(INDEX).status_code == 200
    assert second.get(INDEX).status_code == 302
    assert StaticDevice.objects.get(user=superuser).token_set.count() == 9
    assert (
        AuditEvent.objects.filter(action=AuditAction.MFA_RECOVERY_CODE_USED).count()
        == 1
    )


def test_an_open_redirect_after_verification_is_refused(superuser: Any) -> None:
    device = TOTPDevice.objects.create(user=superuser, name="admin", confirmed=True)
    client = password_login(superuser)

    response = client.post(
        VERIFY, {"token": current_token(device), "next": "https://evil.example/"}
    )

    assert response["Location"] == INDEX


def test_an_unverified_staff_member_can_still_sign_out(superuser: Any) -> None:
    client = password_login(superuser)

    client.post(reverse("admin:logout"))

    assert "_auth_user_id" not in client.session


def test_the_mfa_pages_send_anonymous_visitors_to_login() -> None:
    response = Client().get(VERIFY)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_with_mfa_switched_off_staff_need_only_a_password(
    superuser: Any, settings: Any
) -> None:
    settings.MFA_REQUIRED_FOR_STAFF = False
    client = password_login(superuser)

    assert client.get(CHANGELIST).status_code == 200


def test_the_shared_fixtures_are_mfa_verified(
    mfa_admin_client: Any, officer_client: Any
) -> None:
    assert mfa_admin_client.get(INDEX).status_code == 200
    assert officer_client.get(CHANGELIST).status_code == 200
