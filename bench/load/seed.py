"""Seed load-test users with API tokens: ``python -m bench.load.seed --count N``.

Runs in the app's environment (its database). One password hash is computed and
shared, because a load run measures chat turns, not PBKDF2. Prints one JSON line
per user: ``{"username", "password", "token"}``.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--prefix", default="load")
    args = parser.parse_args(argv)

    import django

    django.setup()
    from django.contrib.auth.hashers import make_password
    from rest_framework.authtoken.models import Token

    from accounts.models import User

    password = secrets.token_urlsafe(16)
    hashed = make_password(password)
    run = secrets.token_hex(3)
    users = User.objects.bulk_create(
        [
            User(username=f"{args.prefix}-{run}-{n}", password=hashed)
            for n in range(args.count)
        ],
        batch_size=500,
    )
    if any(user.pk is None for user in users):
        users = list(User.objects.filter(username__startswith=f"{args.prefix}-{run}-"))
    tokens = Token.objects.bulk_create(
        [Token(user=user, key=Token.generate_key()) for user in users], batch_size=500
    )
    for user, token in zip(users, tokens, strict=True):
        line = {"username": user.username, "password": password, "token": token.key}
        sys.stdout.write(json.dumps(line) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
