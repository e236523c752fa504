"""Start the real servers as subprocesses on free loopback ports, and watch them.

Used by ``bench/bench_load.py``, ``tests/chaos``, ``tests/load`` and
``tests/scaleout``. The app runs exactly as production does (``python -m
stepsync.serve``) with a fresh var dir and fresh keys; logs go to files under the
var dir so that tests can scan them for PHI canaries.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
# Only these variables of the caller's environment reach the servers: a test run's
# own settings (DJANGO_SETTINGS_MODULE, DATABASE_URL, keys) must never leak in.
PASSTHROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ", "VIRTUAL_ENV")
# Limits raised so that a load run measures the server, not the limiter.
UNLIMITED = {
    "RATE_LIMIT_CALLS_PER_HOUR": "100000000",
    "RATE_LIMIT_CALLS_PER_USER_HOUR": "100000000",
    "RATE_LIMIT_MESSAGES_PER_MINUTE": "100000000",
    "LLM_MAX_CONCURRENT_PER_USER": "1000",
}


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (bound to port 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class AppConfig:
    """One app deployment: its var dir, its environment and its database."""

    var_dir: Path
    env: dict[str, str]

    @property
    def db_path(self) -> Path:
        return Path(self.env["DATABASE_NAME"])

    @property
    def database_url(self) -> str:
        return self.env.get("DATABASE_URL", "")


def app_config(
    var_dir: Path,
    *,
    llm_base_url: str = "",
    llm_api_key: str = "",
    database_url: str = "",
    redis_url: str = "",
    log_level: str = "INFO",
    extra: dict[str, str] | None = None,
    keys_from: AppConfig | None = None,
) -> AppConfig:
    """A production-like environment with fresh keys (or ``keys_from``'s keys)."""
    var_dir.mkdir(parents=True, exist_ok=True)
    env = {name: os.environ[name] for name in PASSTHROUGH if name in os.environ}
    if keys_from is not None:
        for name in (
            "SECRET_KEY",
            "DATABASE_ENCRYPTION_KEY",
            "AUDIT_HMAC_KEY",
            "BACKUP_ENCRYPTION_KEY",
            "FIELD_ENCRYPTION_KEYS",
            "HEALTH_CHECK_TOKEN",
            "METRICS_TOKEN",
        ):
            env[name] = keys_from.env[name]
    else:
        for name in (
            "DATABASE_ENCRYPTION_KEY",
            "AUDIT_HMAC_KEY",
            "BACKUP_ENCRYPTION_KEY",
        ):
            env[name] = secrets.token_hex(32)
        env["SECRET_KEY"] = secrets.token_urlsafe(50)
        env["FIELD_ENCRYPTION_KEYS"] = f"b1:{secrets.token_hex(32)}"
        env["HEALTH_CHECK_TOKEN"] = secrets.token_urlsafe(24)
        env["METRICS_TOKEN"] = secrets.token_urlsafe(24)
    prom = var_dir / "prometheus"
    prom.mkdir(exist_ok=True)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "stepsync.settings",
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "DEBUG": "false",
            "SECURE_COOKIES": "false",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_NAME": str(var_dir / "stepsync.db"),
            "BACKUP_DIR": str(var_dir / "backups"),
            "MAINTENANCE_LOCK_FILE": str(var_dir / "maintenance.lock"),
            "PROMETHEUS_MULTIPROC_DIR": str(prom),
            "LOG_LEVEL": log_level,
            "LOG_FORMAT": "json",
            "GROQ_API_KEY": llm_api_key
            or (secrets.token_hex(16) if llm_base_url else ""),
            "GROQ_API_BASE_URL": llm_base_url or "http://127.0.0.1:9/v1",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "SENTRY_DSN": "",
        }
    )
    env.update(extra or {})
    return AppConfig(var_dir=var_dir, env=env)


def manage(config: AppConfig, *args: str, timeout: float = 300) -> str:
    """Run ``manage.py <args>`` in the app's environment; return stdout or raise."""
    result = subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=ROOT,
        env=config.env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        # The command's own error line only; commands never print user text.
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"manage.py {args[0]} failed: {' | '.join(tail)}")
    return result.stdout


def run_python(config: AppConfig, module: str, *args: str, timeout: float = 300) -> str:
    """Run ``python -m module args`` in the app's environment; return stdout."""
    result = subprocess.run(
        [PYTHON, "-m", module, *args],
        cwd=ROOT,
        env=config.env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        tail = result.stderr.strip().splitlines()[-3:]
        raise RuntimeError(f"{module} failed: {' | '.join(tail)}")
    return result.stdout


@dataclass
class Server:
    """A subprocess in its own process group, logging to a file."""

    name: str
    cmd: list[str]
    env: dict[str, str]
    log_path: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None
    _log: Any = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> Server:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            self.cmd,
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_http(self, path: str = "/health/live", timeout: float = 60.0) -> None:
        """Wait until the server answers HTTP (any status below 500) on ``path``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode if self.proc else '?'}"
                    f" before answering; see {self.log_path}"
                )
            try:
                with urllib.request.urlopen(self.base_url + path, timeout=2):
                    return
            except urllib.error.HTTPError as exc:
                if exc.code < 500:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer within {timeout:.0f} s")

    def signal_group(self, sig: int) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL the whole process group at once (a crash: no clean shutdown)."""
        self.signal_group(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=10)
        self._close_log()

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the group, then SIGKILL whatever is left after ``timeout``."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.signal_group(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.signal_group(signal.SIGKILL)
                self.proc.wait(timeout=10)
        # Workers may outlive the master by a moment; the group goes with it.
        self.signal_group(signal.SIGKILL)
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text("utf-8", "replace")
        except FileNotFoundError:
            return ""


def start_app(
    config: AppConfig,
    *,
    workers: int = 2,
    port: int | None = None,
    name: str = "app",
    wait: bool = True,
    jobs: bool = False,
) -> Server:
    """Start ``python -m stepsync.serve --workers N`` (production's entry point).

    Without ``jobs`` the server's own ``runjobs`` child is left out, so that a test
    decides when cleanup, purge and alert jobs run."""
    port = port or free_port()
    cmd = [
        PYTHON,
        "-m",
        "stepsync.serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        *(() if jobs else ("--no-jobs",)),
    ]
    log = config.var_dir / f"{name}-{port}.log"
    server = Server(name, cmd, config.env, log, port).start()
    if wait:
        server.wait_http("/health/live", timeout=90)
    return server


def start_job_runner(
    config: AppConfig, *, name: str = "runner", tick: float = 1.0
) -> Server:
    """Start a standalone ``manage.py runjobs --tick N`` (its own process group,
    logging to the var dir): the scale-out shape's single job runner."""
    cmd = [PYTHON, "manage.py", "runjobs", "--tick", str(tick)]
    log = config.var_dir / f"{name}.log"
    return Server(name, cmd, config.env, log, port=0).start()


def prepare_database(config: AppConfig) -> None:
    """Create the key files' absence-proof env, then migrate the fresh database."""
    manage(config, "migrate", "--noinput", "-v0")


def seed_users(config: AppConfig, *, count: int, prefix: str) -> list[dict[str, str]]:
    """Create ``count`` users with API tokens directly in the database (fast path).

    Each line holds the username, the (shared) password and a token. Tests use the
    token; the load benchmark logs every seeded user in over HTTP before timing.
    """
    out = run_python(
        config, "bench.load.seed", "--count", str(count), "--prefix", prefix
    )
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def raise_open_files_limit() -> int:
    """Raise RLIMIT_NOFILE's soft limit to the hard limit (children inherit it)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else 65536
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


def db_connect(config: AppConfig) -> Any:
    """A DB-API connection to the app's database (SQLCipher file or PostgreSQL).

    Reads go straight to the database, bypassing the app: tests use it to count
    rows and to hold locks. The SQLCipher key is issued by the backend's helper.
    """
    if config.database_url:
        import psycopg

        return psycopg.connect(
            config.database_url.replace("postgres://", "postgresql://", 1)
        )
    from stepsync.db.sqlcipher.base import open_keyed

    return open_keyed(
        str(config.db_path),
        config.env["DATABASE_ENCRYPTION_KEY"],
        timeout=30,
        check_same_thread=False,
        isolation_level=None,
    )


def db_rows(config: AppConfig, sql: str, params: tuple[Any, ...] = ()) -> list[tuple]:
    """Run one read query on a fresh connection; return all rows."""
    if config.database_url:
        sql = sql.replace("?", "%s")
    conn = db_connect(config)
    try:
        cur = conn.cursor()
        cur.execute(sql, params)
        return list(cur.fetchall())
    finally:
        conn.close()


def idempotency_digest(key: str) -> str:
    """The stored form of an Idempotency-Key (chat.services.idempotency_digest)."""
    import hashlib

    return hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()


@dataclass(frozen=True)
class Persistence:
    """Exactly-once check of user messages against what clients were told."""

    acknowledged: int
    missing: int  # acknowledged (201) but not stored
    duplicated: int  # idempotency keys stored more than once
    user_messages: int
    unanswered: int  # stored user messages without an assistant reply


def check_persistence(config: AppConfig, acknowledged_keys: list[str]) -> Persistence:
    """Compare the keys acknowledged with 201 against the stored user messages."""
    rows = db_rows(
        config,
        "SELECT idempotency_key, COUNT(*) FROM chat_message "
        "WHERE role = 'user' AND idempotency_key IS NOT NULL GROUP BY idempotency_key",
    )
    stored = {key: count for key, count in rows}
    missing = sum(
        1 for key in acknowledged_keys if idempotency_digest(key) not in stored
    )
    duplicated = sum(1 for count in stored.values() if count > 1)
    users = db_rows(config, "SELECT COUNT(*) FROM chat_message WHERE role = 'user'")
    unanswered = db_rows(
        config,
        "SELECT COUNT(*) FROM chat_message u WHERE u.role = 'user' AND NOT EXISTS "
        "(SELECT 1 FROM chat_message r WHERE r.in_reply_to_id = u.id)",
    )
    return Persistence(
        acknowledged=len(acknowledged_keys),
        missing=missing,
        duplicated=duplicated,
        user_messages=int(users[0][0]),
        unanswered=int(unanswered[0][0]),
    )
