"""MFA for staff (django-otp): who needs it, TOTP enrollment, recovery codes, checks.

Staff users (compliance officers are staff) must verify a confirmed TOTP device, or
use a one-time recovery code, before the admin lets them in, while
MFA_REQUIRED_FOR_STAFF is on. Enrollment and failed checks are audited; tokens and
codes are never logged or audited.
"""

from __future__ import annotations

from base64 import b32encode
from typing import Any

import django_otp
import segno
from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.views.decorators.debug import sensitive_variables
from django_otp import devices_for_user
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from compliance.models import AuditAction, AuditOutcome
from compliance.services import audit_record

RECOVERY_CODES = 10
DEVICE_NAME = "admin"


def mfa_required(user: Any) -> bool:
    """True when this user must pass a second factor to use the admin."""
    if not settings.MFA_REQUIRED_FOR_STAFF:
        return False
    return bool(
        getattr(user, "is_authenticated", False)
        and user.is_active
        and (user.is_staff or user.is_superuser)
    )


def mfa_verified(user: Any) -> bool:
    is_verified = getattr(user, "is_verified", None)
    return bool(is_verified and is_verified())


def mfa_pending(user: Any) -> bool:
    """Signed in with a password but not yet through the second factor."""
    return mfa_required(user) and not mfa_verified(user)


def mfa_enrolled(user: Any) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def totp_device_pending(*, user: Any) -> TOTPDevice:
    """The user's unconfirmed TOTP device (created on first use; the secret persists
    until confirmed, so reloading the page shows the same QR code)."""
    device = (
        TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    )
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False)
    return device


def totp_qr_data_uri(device: TOTPDevice) -> str:
    """The otpauth:// URI as an SVG data: URI (allowed by the CSP's img-src data:)."""
    return segno.make(device.config_url, error="m").svg_data_uri(scale=4)


def totp_secret_text(device: TOTPDevice) -> str:
    """The secret in base32, for typing into an app that cannot scan the code."""
    return b32encode(device.bin_key).decode("ascii")


@sensitive_variables("token", "codes")
def totp_enroll_confirm(
    *, user: Any, token: str, request: HttpRequest | None = None
) -> list[str] | None:
    """Confirm the pending TOTP device with a token from the app.

    Returns 10 fresh recovery codes (shown once; earlier codes are revoked) and marks
    the session verified; returns None when the token is wrong (audited as
    MFA_VERIFY_FAILED).
    """
    device = totp_device_pending(user=user)
    if not device.verify_token(token):
        _audit_failed(user=user, request=request, stage="enroll")
        return None
    with transaction.atomic():
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        codes = recovery_codes_issue(user=user)
    if request is not None:
        django_otp.login(request, device)
    audit_record(
        action=AuditAction.MFA_ENROLL,
        actor=user,
        target_type="user",
        target_id=user.pk,
        details={"device": "totp", "recovery_codes": len(codes)},
        request=request,
    )
    return codes


def recovery_codes_issue(*, user: Any) -> list[str]:
    """Replace the user's recovery codes with RECOVERY_CODES new one-time codes."""
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name="recovery", confirmed=True)
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODES)]
    StaticToken.objects.bulk_create(
        StaticToken(device=device, token=code) for code in codes
    )
    return codes


@sensitive_variables("token")
def mfa_verify(*, user: Any, token: str, request: HttpRequest | None = None) -> bool:
    """Check a TOTP token or a recovery code against the user's confirmed devices.

    On success the session is marked verified (a recovery code is consumed and the
    use audited); a failure is audited as MFA_VERIFY_FAILED. django-otp throttles
    repeated failures per device.
    """
    token = (token or "").strip().replace(" ", "").lower()
    matched = None
    if token:
        with transaction.atomic():
            for device in devices_for_user(user, for_verify=True):
                if device.verify_token(token):
                    matched = device
                    break
    if matched is None:
        _audit_failed(user=user, request=request, stage="verify")
        return False
    if request is not None:
        django_otp.login(request, matched)
    if isinstance(matched, StaticDevice):
        audit_record(
            action=AuditAction.MFA_RECOVERY_CODE_USED,
            actor=user,
            target_type="user",
            target_id=user.pk,
            details={"codes_left": matched.token_set.count()},
            request=request,
        )
    return True


def _audit_failed(*, user: Any, request: HttpRequest | None, stage: str) -> None:
    audit_record(
        action=AuditAction.MFA_VERIFY_FAILED,
        actor=user,
        target_type="user",
        target_id=user.pk,
        outcome=AuditOutcome.FAILURE,
        details={"stage": stage},
        request=request,
    )
