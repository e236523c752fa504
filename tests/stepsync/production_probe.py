"""Run inside a subprocess with production settings: log in over HTTPS with Django's
test client and print what the browser would receive (cookie flags, cache headers).

Usage: python -m tests.stepsync.production_probe  (env: production-like settings)
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "stepsync.settings")


def main() -> int:
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    call_command("migrate", verbosity=0)
    get_user_model().objects.create_user("probe_user", password="A-long-passphrase-42")
    client = Client(HTTP_HOST="chat.example.org")
    login_page = client.get("/login/", secure=True)
    csrf = login_page.cookies[next(iter(login_page.cookies))]
    response = client.post(
        "/login/",
        {
            "username": "probe_user",
            "password": "A-long-passphrase-42",
            "csrfmiddlewaretoken": csrf.value,
        },
        secure=True,
    )
    session_name = next(n for n in response.cookies if "session" in n)
    session = response.cookies[session_name]
    page = client.get("/conversations/", secure=True)
    print(
        json.dumps(
            {
                "login_status": response.status_code,
                "csrf": {"name": csrf.key, **_flags(csrf)},
                "session": {"name": session.key, **_flags(session)},
                "page_status": page.status_code,
                "page_cache_control": page.get("Cache-Control", ""),
            }
        )
    )
    return 0


def _flags(morsel: object) -> dict[str, object]:
    return {
        "secure": bool(morsel["secure"]),  # type: ignore[index]
        "httponly": bool(morsel["httponly"]),  # type: ignore[index]
        "samesite": morsel["samesite"],  # type: ignore[index]
        "path": morsel["path"],  # type: ignore[index]
        "domain": morsel["domain"],  # type: ignore[index]
    }


if __name__ == "__main__":
    sys.exit(main())
