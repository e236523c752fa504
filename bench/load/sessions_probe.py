"""Watch the conversation table during the soak: ``python -m bench.load.sessions_probe``.

Read-only: the sessions are closed by the server's own job runner (the real
``cleanup_sessions`` job of ``manage.py runjobs``); this only counts, every
``--interval`` seconds, the active sessions (active and not idle past the timeout),
the expired ones not closed yet and the closed ones. One JSON line per round
(counts only) until killed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval", type=float, default=5.0)
    args = parser.parse_args(argv)

    import django

    django.setup()
    from django.db import close_old_connections
    from django.utils import timezone

    from chat.models import Conversation
    from chat.models.conversation import session_cutoff

    active = Conversation.Status.ACTIVE
    started = time.monotonic()
    while True:
        close_old_connections()
        cutoff = session_cutoff(timezone.now())
        rows = Conversation.objects
        line = {
            "t": round(time.monotonic() - started, 1),
            "active": rows.filter(status=active, last_activity_at__gte=cutoff).count(),
            "expired_open": rows.filter(
                status=active, last_activity_at__lt=cutoff
            ).count(),
            "closed": rows.filter(status=Conversation.Status.CLOSED).count(),
        }
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
