"""`python -m stepsync.serve`: check the database key, then serve under uvicorn (ASGI)."""

from __future__ import annotations

import argparse
import os
import sys


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Serve Step Sync over ASGI.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=2, help="one per core")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "stepsync.settings")
    import django
    from django.core.exceptions import ImproperlyConfigured

    try:
        django.setup()
    except ImproperlyConfigured as exc:
        print(f"stepsync: refusing to start: {exc}", file=sys.stderr)
        return 3
    from stepsync.startup import verify_database

    fault = verify_database()
    if fault is not None:
        print(f"stepsync: refusing to start: {fault}", file=sys.stderr)
        return 3
    import uvicorn

    print(f"Step Sync serving on http://{args.host}:{args.port}/", flush=True)
    uvicorn.run(
        "stepsync.asgi:application",
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        server_header=False,
        access_log=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
