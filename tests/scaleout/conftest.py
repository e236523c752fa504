"""The scale-out shape, running: two app servers and one job runner on PostgreSQL + Redis.

``cluster`` (one per module) creates a uniquely named PostgreSQL database on
127.0.0.1:5432 and migrates it, flushes Redis logical database ``REDIS_DB`` on
127.0.0.1:6379, starts the LLM test server (tests/llm_server.py), two app servers
exactly as production starts them (``python -m stepsync.serve --no-jobs``, each in
its own process group, on free ports, with DATABASE_URL and REDIS_URL) and one
standalone ``manage.py runjobs``. Teardown stops everything, scans the logs, the
LLM's received prompts and every stored value (decrypted by the app) for PHI
canaries, drops the database and flushes Redis again.

Without PostgreSQL or Redis the tests skip with a plain message, unless
REQUIRE_POSTGRES=1 / REQUIRE_REDIS=1 (then they fail).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bench.load import backing, harness
from tests.llm_server import LLMTestServer
from tests.phi_tripwire import find_canary

REDIS_DB = 12
WORKERS = 2
# Limits small enough to count exactly; retries off so one message = one LLM call.
SETTINGS = {
    "RATE_LIMIT_CALLS_PER_HOUR": "12",
    "RATE_LIMIT_CALLS_PER_USER_HOUR": "5",
    "RATE_LIMIT_MESSAGES_PER_MINUTE": "100000",
    "LLM_MAX_CONCURRENT_PER_USER": "100",
    "LLM_MAX_RETRIES": "0",
    "CIRCUIT_BREAKER_FAILURE_THRESHOLD": "3",
    "CIRCUIT_BREAKER_TIMEOUT_SECONDS": "600",
}
FIGURES: dict[str, str] = {}


def require(url: str, service: str, variable: str) -> None:
    """Skip (or fail when ``variable``=1) unless ``service`` answers at ``url``."""
    if backing.reachable(url):
        return
    where = url.rsplit("@", 1)[-1]
    if os.environ.get(variable) == "1":
        pytest.fail(f"{variable}=1 but {service} does not answer at {where}")
    pytest.skip(f"{service} is not running at {where}: scale-out tests skipped")


def wait_for(check: Callable[[], bool], timeout: float = 45.0) -> bool:
    """Poll ``check`` every 0.2 s until it is true or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return check()


@dataclass
class Cluster:
    """Two app servers, the job runner(s), the LLM and the shared backing services."""

    database: backing.PostgresDatabase
    redis_url: str
    config: harness.AppConfig
    llm: LLMTestServer
    servers: list[harness.Server]
    runners: list[harness.Server] = field(default_factory=list)
    tmp: Path = Path()

    @property
    def urls(self) -> list[str]:
        return [server.base_url for server in self.servers]

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple]:
        return harness.db_rows(self.config, sql, params)

    def count(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        return int(self.rows(sql, params)[0][0])

    def users(self, count: int, prefix: str) -> list[str]:
        return [
            u["token"]
            for u in harness.seed_users(self.config, count=count, prefix=prefix)
        ]

    def start_runner(self, name: str) -> harness.Server:
        runner_config = harness.AppConfig(self.tmp / name, dict(self.config.env))
        runner_config.var_dir.mkdir(parents=True, exist_ok=True)
        runner = harness.start_job_runner(runner_config, name=name, tick=1.0)
        self.runners.append(runner)
        return runner

    def logs(self) -> str:
        parts = [s.log_text() for s in self.servers + self.runners]
        return "\n".join(parts)


def _server_config(tmp: Path, name: str, base: harness.AppConfig) -> harness.AppConfig:
    config = harness.app_config(
        tmp / name,
        llm_base_url=base.env["GROQ_API_BASE_URL"],
        database_url=base.database_url,
        redis_url=base.env["REDIS_URL"],
        extra=SETTINGS,
        keys_from=base,
    )
    config.env["GROQ_API_KEY"] = base.env["GROQ_API_KEY"]
    return config


def _phi_scan(cluster: Cluster) -> list[str]:
    hits = []
    if find_canary(cluster.logs()):
        hits.append("server and runner logs")
    prompts = json.dumps([r.get("body") for r in cluster.llm.requests])
    if find_canary(prompts):
        hits.append("prompts the LLM received")
    scan = json.loads(harness.run_python(cluster.config, "tests.chaos.phiscan"))
    hits += [f"stored {where}" for where in scan["hits"]]
    if scan["undecryptable_tables"] or scan["unreadable_tables"]:
        hits.append("tables the app could not decrypt or read")
    FIGURES["stored rows scanned (decrypted by the app)"] = str(scan["rows"])
    return hits


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    require(backing.POSTGRES_SERVER_URL, "PostgreSQL", "REQUIRE_POSTGRES")
    require(backing.REDIS_SERVER_URL, "Redis", "REQUIRE_REDIS")
    tmp = tmp_path_factory.mktemp("scaleout")
    redis_url = backing.redis_db_url(REDIS_DB)
    backing.redis_flush(redis_url)
    database = backing.fresh_postgres_database()
    llm = LLMTestServer().start()
    built = Cluster(database, redis_url, harness.AppConfig(tmp, {}), llm, [], tmp=tmp)
    try:
        base = harness.app_config(
            tmp / "base",
            llm_base_url=llm.base_url,
            database_url=database.url,
            redis_url=redis_url,
            extra=SETTINGS,
        )
        built.config = base
        harness.prepare_database(base)
        for name in ("app-a", "app-b"):
            config = _server_config(tmp, name, base)
            built.servers.append(
                harness.start_app(config, workers=WORKERS, name=name, jobs=False)
            )
        built.start_runner("runner-1")
        yield built
    finally:
        for process in built.servers + built.runners:
            process.stop()
        llm.stop()
        try:
            hits = _phi_scan(built) if built.servers else []
        finally:
            database.drop()
            backing.redis_flush(redis_url)
        FIGURES["PHI canary hits (logs, prompts, decrypted rows)"] = str(len(hits))
        assert hits == [], f"PHI canary found in: {hits}"


@pytest.fixture
def fresh_shared_state(cluster: Cluster) -> Cluster:
    """Each test starts with empty limit counters and a closed breaker."""
    backing.redis_flush(cluster.redis_url)
    cluster.llm.reset()
    return cluster


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES:
        return
    terminalreporter.section("scale-out figures (2 app servers + 1 job runner)")
    for name, value in FIGURES.items():
        terminalreporter.line(f"{name}: {value}")
