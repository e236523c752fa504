"""Accounts and records for the browser tests, made inside the app's own environment.

Run by the e2e fixtures through ``bench.load.harness.run_python`` (the app's
settings, keys and database), never imported by the test process:

- ``python -m tests.e2e.app_setup seed --users rules,stream`` creates one chat user
  per name (with an API token), a superuser and a compliance officer, each with a
  confirmed TOTP device, and a breach incident discovered 20 days ago; it prints one
  JSON document: the shared password, users by name (username, id, token), the staff
  accounts (username, id, TOTP key in hex) and the incident (reference, discovery
  date).
- ``python -m tests.e2e.app_setup breaker-reset`` closes the LLM breaker (a test that
  failed half-way through the admin walkthrough must not leave it forced open).

Test accounts only: the password and keys are fresh per run and printed to the
test process, which needs them to log in.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import secrets
import sys
from typing import Any


def _user(model: Any, username: str, hashed: str, **flags: bool) -> Any:
    user = model(username=username, password=hashed, **flags)
    user.save()
    return user


def _totp_key(user: Any) -> str:
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.create(user=user, name="admin", confirmed=True)
    return str(device.key)


def _incident(actor: Any) -> dict[str, str]:
    from django.utils import timezone

    from compliance import incidents

    detected = timezone.now() - dt.timedelta(days=20)
    incident = incidents.incident_open(
        title="Export sent to the wrong partner (drill)",
        severity="high",
        category="privacy",
        description="Drill record for the browser walkthrough.",
        detected_at=detected,
        actor=actor,
    )
    incidents.incident_edit(
        incident=incident,
        actor=actor,
        changes={
            "is_breach": True,
            "individuals_affected": 650,
            "state_counts": {"CA": 520, "NV": 130},
            "data_categories": ["account", "health"],
        },
    )
    return {
        "reference": incident.reference,
        "pk": str(incident.pk),
        "detected": detected.astimezone(dt.UTC).date().isoformat(),
    }


def seed(names: list[str]) -> dict[str, Any]:
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import Group
    from rest_framework.authtoken.models import Token

    from accounts.models import User
    from compliance.roles import roles_setup

    password = secrets.token_urlsafe(16)
    hashed = make_password(password)  # one PBKDF2 run shared by every account
    run = secrets.token_hex(3)
    users = {}
    for name in names:
        user = _user(User, f"e2e-{name}-{run}", hashed)
        token = Token.objects.create(user=user)
        users[name] = {"username": user.username, "id": user.pk, "token": token.key}
    admin = _user(User, f"e2e-admin-{run}", hashed, is_staff=True, is_superuser=True)
    officer = _user(User, f"e2e-officer-{run}", hashed, is_staff=True)
    roles_setup()
    officer.groups.add(Group.objects.get(name="Compliance officers"))
    staff = {
        role: {"username": who.username, "id": who.pk, "key": _totp_key(who)}
        for role, who in (("admin", admin), ("officer", officer))
    }
    return {
        "password": password,
        "users": users,
        "staff": staff,
        "incident": _incident(admin),
    }


def breaker_reset() -> dict[str, str]:
    from chat import breaker

    snapshot = breaker.breaker_reset(actor=None, reason="e2e_teardown")
    return {"state": snapshot.state}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    seeding = commands.add_parser("seed")
    seeding.add_argument("--users", default="")
    commands.add_parser("breaker-reset")
    args = parser.parse_args(argv)

    import django

    django.setup()
    if args.command == "seed":
        names = [name for name in args.users.split(",") if name]
        result = seed(names)
    else:
        result = breaker_reset()
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
