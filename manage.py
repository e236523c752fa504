#!/usr/bin/env python
"""Django's command-line utility; configuration faults print one clear line, no traceback."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "stepsync.settings")
    if sys.argv[1:2] == ["sanitize"]:
        # The sanitizer signs nothing and opens no database: a throw-away key lets
        # it run on a fresh clone before any key file exists.
        import secrets

        os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as exc:
        print(f"stepsync: configuration error: {exc}", file=sys.stderr)
        sys.exit(3)


if __name__ == "__main__":
    main()
