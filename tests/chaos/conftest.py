"""Chaos fixtures: real servers as subprocesses on free ports, and the §2.4 figures.

``deploy(...)`` starts the LLM test server (tests/llm_server.py, in this process)
and the app exactly as production does
(``python -m stepsync.serve``) on a copy of a database migrated once per session,
and on teardown scans the server's captured output, the database rows and the raw
database/WAL bytes for PHI canaries. ``chaos_figures`` collects what the tests
injected and observed; the session ends by printing them (RELIABILITY.md §2.4).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bench.load import harness
from tests.llm_server import Fault, LLMTestServer
from tests.phi_tripwire import find_canary, record_text

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class ChaosFigures:
    """RELIABILITY.md §2.4 figures, summed over the chaos tests of this session."""

    scenarios: list[str] = field(default_factory=list)
    faults_injected: int = 0
    messages_accepted: int = 0
    messages_lost: int = 0
    messages_duplicated: int = 0
    unhandled_500s: int = 0
    upstream_calls: int = 0
    logical_llm_calls: int = 0
    breaker_transitions: int = 0
    canary_hits: int = 0

    def lines(self) -> list[str]:
        ratio = (
            f"{self.upstream_calls / self.logical_llm_calls:.2f}"
            if self.logical_llm_calls
            else "n/a"
        )
        return [
            f"{self.faults_injected} faults injected across {len(self.scenarios)} "
            f"scenarios ({', '.join(self.scenarios)})",
            f"{self.messages_accepted} messages accepted; {self.messages_lost} lost; "
            f"{self.messages_duplicated} duplicated; {self.unhandled_500s} unhandled 500s",
            f"upstream LLM calls / logical calls = {self.upstream_calls}/"
            f"{self.logical_llm_calls} = {ratio}",
            f"breaker transitions observed: {self.breaker_transitions}",
            f"PHI canary hits in server logs, DB rows and DB/WAL bytes: "
            f"{self.canary_hits}",
        ]


FIGURES = ChaosFigures()


@pytest.fixture(scope="session")
def chaos_figures() -> ChaosFigures:
    return FIGURES


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES.scenarios:
        return
    terminalreporter.section("chaos figures (RELIABILITY.md §2.4)")
    for line in FIGURES.lines():
        terminalreporter.line(line)


@dataclass
class Deployment:
    """One running app (and its LLM test server) with its own database and logs."""

    config: harness.AppConfig
    app: harness.Server
    llm: LLMTestServer | None
    workers: int

    @property
    def base_url(self) -> str:
        return self.app.base_url

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple]:
        return harness.db_rows(self.config, sql, params)

    def count(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        return int(self.rows(sql, params)[0][0])

    def users(self, count: int, prefix: str = "chaos") -> list[dict[str, str]]:
        return harness.seed_users(self.config, count=count, prefix=prefix)

    def restart(self) -> None:
        self.app.stop()
        self.app = harness.start_app(self.config, workers=self.workers, name="app")

    def crash(self) -> None:
        """SIGKILL the server's whole process group (master and workers)."""
        self.app.kill()

    def llm_calls(self) -> int:
        return self.llm.calls if self.llm is not None else 0

    def audit_count(self, action: str) -> int:
        return self.count(
            "SELECT COUNT(*) FROM compliance_auditevent WHERE action = ?", (action,)
        )

    def logs(self) -> str:
        """Everything the app servers printed (stdout and stderr), all restarts."""
        paths = sorted(self.config.var_dir.glob("*.log"))
        return "\n".join(path.read_text("utf-8", "replace") for path in paths)

    def phi_hits(self) -> list[str]:
        """Where a canary appears: logs, any table row, raw DB/WAL/SHM bytes."""
        hits = []
        if find_canary(self.logs()):
            hits.append("server logs")
        for name in ("stepsync.db", "stepsync.db-wal", "stepsync.db-shm"):
            path = self.config.var_dir / name
            if path.exists() and find_canary(path.read_bytes().decode("latin-1")):
                hits.append(f"raw bytes of {name}")
        if not self.config.database_url and not self.config.db_path.exists():
            return hits
        for table in self._tables():
            for row in self.rows(f'SELECT * FROM "{table}"'):  # noqa: S608
                if find_canary(repr(row)):
                    hits.append(f"rows of {table}")
                    break
        return hits

    def _tables(self) -> list[str]:
        if self.config.database_url:
            rows = self.rows(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            )
        else:
            rows = self.rows("SELECT name FROM sqlite_master WHERE type = 'table'")
        return [str(name) for (name,) in rows]


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> harness.AppConfig:
    """A database migrated once per session; deployments copy it (same keys)."""
    var_dir = tmp_path_factory.mktemp("chaos-template")
    config = harness.app_config(var_dir)
    harness.prepare_database(config)
    return config


def _copy_database(template: harness.AppConfig, target: harness.AppConfig) -> None:
    # A plain file copy: migrate exited, so the database was closed cleanly.
    for suffix in ("", "-wal", "-shm"):
        path = Path(str(template.db_path) + suffix)
        if path.exists():
            shutil.copy2(path, str(target.db_path) + suffix)


@pytest.fixture
def deploy(
    tmp_path: Path,
    migrated_template: harness.AppConfig,
    chaos_figures: ChaosFigures,
) -> Iterator[Callable[..., Deployment]]:
    """Factory: ``deploy(workers=2, llm=True, extra={...})`` -> a running Deployment.

    On teardown the servers stop and every deployment is scanned for canaries.
    """
    started: list[Deployment] = []

    def start(
        *,
        workers: int = 2,
        llm: bool = True,
        llm_latency_ms: float = 20.0,
        extra: dict[str, str] | None = None,
        wait: bool = True,
    ) -> Deployment:
        var_dir = tmp_path / f"deploy-{len(started)}"
        server = None
        if llm:
            server = LLMTestServer().start()
            server.set_default(Fault(delay=llm_latency_ms / 1000))
        settings = {**harness.UNLIMITED, **(extra or {})}
        config = harness.app_config(
            var_dir,
            llm_base_url=server.base_url if server else "",
            extra=settings,
            keys_from=migrated_template,
        )
        _copy_database(migrated_template, config)
        deployment = Deployment(
            config=config,
            app=harness.start_app(config, workers=workers, wait=wait),
            llm=server,
            workers=workers,
        )
        started.append(deployment)
        return deployment

    yield start
    for deployment in started:
        deployment.app.stop()
        if deployment.llm is not None:
            deployment.llm.stop()
    for deployment in started:
        hits = deployment.phi_hits()
        chaos_figures.canary_hits += len(hits)
        for where in hits:
            # record_text only records text that holds a canary: hand it one.
            record_text(f"chaos deployment: {where}", "123-45-6789")
        assert hits == [], f"PHI canary found in: {hits}"
