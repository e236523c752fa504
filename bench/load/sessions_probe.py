"""Run session cleanup in a loop and print counts: ``python -m bench.load.sessions_probe``.

For the memory soak. SESSION_TIMEOUT_HOURS is whole hours, so the loop passes a
shifted ``now`` to ``chat.services.sessions_cleanup``: conversations idle for more
than ``--idle-seconds`` are closed, exactly as the real job would close them once
the timeout had passed. Prints one JSON line per round (counts only) until killed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import timedelta


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    args = parser.parse_args(argv)

    import django

    django.setup()
    from django.conf import settings
    from django.utils import timezone

    from chat.selectors import session_stats
    from chat.services import sessions_cleanup

    shift = timedelta(hours=settings.SESSION_TIMEOUT_HOURS) - timedelta(
        seconds=args.idle_seconds
    )
    started = time.monotonic()
    while True:
        now = timezone.now()
        closed = sessions_cleanup(now=now + shift)
        stats = session_stats(now=now)
        line = {
            "t": round(time.monotonic() - started, 1),
            "closed": closed,
            "active": stats.active_sessions,
            "messages": stats.total_messages,
        }
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
