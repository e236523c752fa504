"""Server CPU per chat turn, in-process through the production ASGI application.

Drives ``stepsync.asgi.application`` (production settings, a temporary SQLCipher
database, fresh keys) with raw ASGI messages, exactly as uvicorn hands them over
(per-request thread-sensitive context included), for three kinds of turn: rules
(answered by the rules), llm (a JSON reply from the LLM) and stream (the LLM's reply
as server-sent events). The LLM is the project's test server (tests/llm_server.py)
in a process of its own with no latency, so its CPU is not counted here. Prints the
CPU milliseconds of this process per turn (all threads), the median of
``--reps`` repetitions of ``--turns`` turns each, then the database pages each
kind of turn writes. Everything lives in a temporary
folder, removed at the end; nothing is written under var/.

    .venv/bin/python bench/bench_turn.py                 # rules, llm, stream
    .venv/bin/python bench/bench_turn.py llm --turns 1000 --reps 1   # for py-spy
    .venv/bin/python bench/bench_turn.py llm --gap-ms 130   # a worker's pace at
                                                           # overhead-100

Each conversation takes CONVERSATION_TURNS messages before a new one is opened, so
the prompt carries a realistic history. Wall time is printed too, but it includes
the LLM test server's own work over loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.stepsync.asgi_calls import asgi_call, asgi_scope  # noqa: E402

KINDS = ("rules", "llm", "stream")
TEXTS = {
    "rules": "my steps aren't syncing",
    "llm": "What do you think about walking in the rain?",
    "stream": "What do you think about walking in the rain?",
}
CONVERSATION_TURNS = 15
WARMUP_TURNS = 20
WAL_HEADER, WAL_FRAME_HEADER = 32, 24  # bytes (SQLite's WAL format)
HOST = b"127.0.0.1"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kinds", nargs="*", help=f"any of {', '.join(KINDS)}")
    parser.add_argument("--turns", type=int, default=300, help="turns per repetition")
    parser.add_argument("--reps", type=int, default=3, help="median over N reps")
    parser.add_argument(
        "--gap-ms", type=float, default=0.0, help="idle pause between turns (ms)"
    )
    return parser.parse_args(argv)


def configure(folder: Path, llm_base_url: str) -> None:
    """Production settings in ``folder``, with fresh keys and unlimited rates."""
    os.environ.update(
        DJANGO_SETTINGS_MODULE="stepsync.settings",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        DATABASE_NAME=str(folder / "stepsync.db"),
        DATABASE_ENCRYPTION_KEY=secrets.token_hex(32),
        AUDIT_HMAC_KEY=secrets.token_hex(32),
        BACKUP_ENCRYPTION_KEY=secrets.token_hex(32),
        FIELD_ENCRYPTION_KEYS=f"b1:{secrets.token_hex(32)}",
        AUDIT_HEAD_EXPORT_PATH=str(folder / "audit_heads.jsonl"),
        BACKUP_DIR=str(folder / "backups"),
        MAINTENANCE_LOCK_FILE=str(folder / "maintenance.lock"),
        GROQ_API_KEY="bench-key",
        GROQ_API_BASE_URL=llm_base_url,
        RATE_LIMIT_CALLS_PER_HOUR="100000000",
        RATE_LIMIT_CALLS_PER_USER_HOUR="100000000",
        RATE_LIMIT_MESSAGES_PER_MINUTE="100000000",
        LLM_MAX_CONCURRENT_PER_USER="1000",
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_COOKIES="false",
        LOG_LEVEL="WARNING",
        DATABASE_URL="",
        REDIS_URL="",
        SENTRY_DSN="",
    )
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)  # metrics of this process only


class AsgiCaller:
    """Calls an ASGI application as uvicorn does: one scope, the body, then a
    disconnect only once the response is complete."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.token = token.encode()
        self.sequence = 0

    async def request(
        self, method: str, path: str, body: dict[str, Any], accept: str
    ) -> tuple[int, bytes]:
        self.sequence += 1
        payload = json.dumps(body).encode()
        headers = [
            (b"host", HOST),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
            (b"accept", accept.encode()),
            (b"authorization", b"Token " + self.token),
            (b"idempotency-key", f"bench-{self.sequence}".encode()),
        ]
        response = await asgi_call(
            self.app, asgi_scope(method, path, headers, ("127.0.0.1", 8000)), payload
        )
        return response.status, response.body


def _setup_user() -> str:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user(
        "bench-turn", password=secrets.token_urlsafe(16)
    )
    return str(Token.objects.create(user=user).key)


async def _conversation(caller: AsgiCaller) -> int:
    status, body = await caller.request(
        "POST", "/api/conversations/", {}, "application/json"
    )
    if status != 201:
        raise RuntimeError(f"conversation create answered {status}")
    return int(json.loads(body)["id"])


async def _turns(caller: AsgiCaller, kind: str, turns: int, gap_s: float = 0.0) -> None:
    accept = "text/event-stream" if kind == "stream" else "application/json"
    conversation = 0
    for i in range(turns):
        if i % CONVERSATION_TURNS == 0:
            conversation = await _conversation(caller)
        path = f"/api/conversations/{conversation}/messages/"
        status, body = await caller.request("POST", path, {"text": TEXTS[kind]}, accept)
        expected = b"event: done" if kind == "stream" else b'"source": "'
        if status not in (200, 201) or expected not in body.replace(b'":"', b'": "'):
            raise RuntimeError(f"{kind} turn answered {status}")
        if kind != "rules" and b'"llm"' not in body:
            raise RuntimeError(f"{kind} turn was not answered by the LLM")
        if gap_s:
            await asyncio.sleep(gap_s)


async def measure(
    caller: AsgiCaller, kind: str, turns: int, gap_s: float = 0.0
) -> tuple[float, float]:
    """(CPU ms per turn, wall ms per turn) of ``turns`` turns of ``kind``."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await _timed_turns(caller, kind, turns, gap_s)
    cpu1, wall1 = time.process_time(), time.perf_counter()
    return 1000 * (cpu1 - cpu0) / turns, 1000 * (wall1 - wall0) / turns


async def _timed_turns(caller: AsgiCaller, kind: str, turns: int, gap_s: float) -> None:
    # A named frame, so that profiles can keep the measured turns only.
    await _turns(caller, kind, turns, gap_s)


async def wal_pages_per_turn(caller: AsgiCaller, kind: str, turns: int) -> float:
    """Database pages written per turn (WAL frames): each is a page encrypted and
    authenticated (AES + HMAC), written, and copied into the file by the next
    checkpoint. A count, so it does not swing with the host's speed as CPU does.
    The checkpointer pauses meanwhile, so that the log only grows."""
    from django.conf import settings

    from stepsync.db.sqlcipher import checkpointer

    wal = Path(str(settings.DATABASES["default"]["NAME"]) + "-wal")
    checkpointer.stop()
    try:
        page_size = await asyncio.to_thread(_truncate_wal)
        await _turns(caller, kind, turns)
        frames = (wal.stat().st_size - WAL_HEADER) / (page_size + WAL_FRAME_HEADER)
    finally:
        checkpointer.start(settings.DATABASE_CHECKPOINT_SECONDS)
    return frames / turns


def _truncate_wal() -> int:
    """Empty the write-ahead log (a TRUNCATE checkpoint); returns the page size."""
    from django.db import connection

    try:
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            cursor.execute("PRAGMA page_size")
            return int(cursor.fetchone()[0])
    finally:
        connection.close()


async def run(
    kinds: list[str], turns: int, reps: int, gap_s: float = 0.0
) -> dict[str, list[float]]:
    from stepsync.asgi import application

    token = await asyncio.to_thread(_setup_user)
    caller = AsgiCaller(application, token)
    results: dict[str, list[float]] = {}
    for kind in kinds:
        await _turns(caller, kind, WARMUP_TURNS)
        samples = [await measure(caller, kind, turns, gap_s) for _ in range(reps)]
        cpu = statistics.median(s[0] for s in samples)
        wall = statistics.median(s[1] for s in samples)
        print(
            f"{kind:<6}: {cpu:6.2f} ms CPU per turn, {wall:6.2f} ms wall "
            f"(median of {reps} x {turns} turns; "
            f"CPU runs {', '.join(f'{s[0]:.2f}' for s in samples)})",
            flush=True,
        )
        results[kind] = [s[0] for s in samples]
        pages = await wal_pages_per_turn(caller, kind, min(turns, 100))
        print(f"{kind:<6}: {pages:6.1f} database pages written per turn", flush=True)
    from chat.llm import aclose_shared_client

    await aclose_shared_client()
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    kinds = list(args.kinds) or list(KINDS)
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        print(f"bench_turn: unknown kind(s) {', '.join(unknown)}", file=sys.stderr)
        return 2
    folder = Path(tempfile.mkdtemp(prefix="bench-turn-"))
    llm = None
    try:
        from bench.load.llm_process import start_llm_server

        llm = start_llm_server(
            folder / "logs", latency_ms=0, ttft_ms=0, tokens=8, token_interval_ms=0
        )
        configure(folder, f"{llm.base_url}/v1")
        import django

        django.setup()
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass
        asyncio.run(run(kinds, args.turns, args.reps, args.gap_ms / 1000))
    finally:
        if llm is not None:
            llm.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
