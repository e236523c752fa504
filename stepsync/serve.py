"""`python -m stepsync.serve`: check the database key, then serve under uvicorn (ASGI).

With ``--workers`` above one, each worker listens on the port itself
(stepsync.serve_workers: SO_REUSEPORT, so the kernel spreads connections evenly).
Beside the web workers it runs ``manage.py runjobs`` as a child process (restarted if
it dies, stopped when the server stops) and points prometheus-client at a fresh
multiprocess directory under var/ so /metrics adds up every worker's series.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
METRICS_DIR = BASE_DIR / "var" / "prometheus-multiproc"
RESTART_DELAY_SECONDS = 5.0
STOP_TIMEOUT_SECONDS = 30.0


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Serve Step Sync over ASGI.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=2, help="one per core")
    parser.add_argument(
        "--no-jobs",
        action="store_true",
        help="do not start `manage.py runjobs` beside the server",
    )
    return parser.parse_args(argv)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fresh_metrics_dir() -> Path | None:
    """A new PROMETHEUS_MULTIPROC_DIR for this server (var/prometheus-multiproc/<pid>)
    unless one is configured; directories of servers no longer running are removed.
    Runs before anything imports prometheus_client, which reads it at import time."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return None
    METRICS_DIR.mkdir(parents=True, exist_ok=True, mode=0o700)
    for old in METRICS_DIR.iterdir():
        if old.name.isdigit() and not _pid_alive(int(old.name)):
            shutil.rmtree(old, ignore_errors=True)
    mine = METRICS_DIR / str(os.getpid())
    shutil.rmtree(mine, ignore_errors=True)
    mine.mkdir(mode=0o700)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(mine)
    return mine


def die_with_parent() -> None:
    """Linux: the job runner gets SIGTERM if this server process is killed."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


class JobRunnerChild:
    """Keeps one `manage.py runjobs` child alive while the server runs."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.stopping = threading.Event()
        self.watcher = threading.Thread(target=self._watch, daemon=True)

    def start(self) -> None:
        self._spawn()
        self.watcher.start()

    def _spawn(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 — fixed argv, our own manage.py
            [sys.executable, str(BASE_DIR / "manage.py"), "runjobs"],
            cwd=BASE_DIR,
            preexec_fn=die_with_parent,
        )

    def _watch(self) -> None:
        # Blocks until the runner exits (no polling: an idle server stays asleep).
        while not self.stopping.is_set():
            process = self.process
            if process is None:
                return
            process.wait()
            if self.stopping.is_set():
                return
            print(
                f"stepsync: job runner exited ({process.returncode}); restarting",
                file=sys.stderr,
                flush=True,
            )
            if self.stopping.wait(RESTART_DELAY_SECONDS):
                return
            self._spawn()

    def stop(self) -> None:
        self.stopping.set()
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "stepsync.settings")
    metrics_dir = fresh_metrics_dir()
    try:
        return serve(args)
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def uvicorn_options() -> dict[str, Any]:
    """uvicorn's settings for every worker (besides the app, host and port)."""
    from django.conf import settings

    from stepsync.logging import uvicorn_log_config

    return {
        "loop": "uvloop",
        # Client IPs come from TRUSTED_PROXY_COUNT in Django; uvicorn must not
        # rewrite REMOTE_ADDR from X-Forwarded-For on its own.
        "proxy_headers": False,
        "http": "httptools",
        "lifespan": "off",
        "server_header": False,
        "timeout_keep_alive": settings.HTTP_KEEP_ALIVE_SECONDS,
        "access_log": False,
        # Our LOGGING (PHI filter on every handler), not uvicorn's default.
        "log_config": uvicorn_log_config(),
    }


def serve(args: argparse.Namespace) -> int:
    import django
    from django.core.exceptions import ImproperlyConfigured

    try:
        django.setup()
    except ImproperlyConfigured as exc:
        print(f"stepsync: refusing to start: {exc}", file=sys.stderr)
        return 3
    from stepsync.startup import system_check_errors, verify_database

    faults = system_check_errors()
    fault = faults[0] if faults else verify_database()
    if fault is not None:
        print(f"stepsync: refusing to start: {fault}", file=sys.stderr)
        return 3
    import uvicorn

    runner = None if args.no_jobs else JobRunnerChild()
    if runner is not None:
        runner.start()
        print("Step Sync job runner started (manage.py runjobs)", flush=True)
    print(f"Step Sync serving on http://{args.host}:{args.port}/", flush=True)
    try:
        options = uvicorn_options()
        if args.workers > 1:
            from stepsync.serve_workers import WorkerPool

            try:
                pool = WorkerPool(args.host, args.port, args.workers, options)
            except OSError as exc:
                print(f"stepsync: cannot listen: {exc.strerror}", file=sys.stderr)
                return 3
            pool.run()
        else:
            uvicorn.run(
                "stepsync.asgi:application", host=args.host, port=args.port, **options
            )
    finally:
        if runner is not None:
            runner.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
