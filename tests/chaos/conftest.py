"""Chaos fixtures: real servers as subprocesses on free ports, and the §2.4 figures.

``deploy(...)`` starts the LLM test server (tests/llm_server.py, in this process)
and the app exactly as production does (``python -m stepsync.serve``) on a copy of a
database migrated once per session. On teardown it records what really happened
(upstream calls the LLM server received, BreakerTransition rows, LLM calls slower
than the deadline) and scans the server's captured output, the prompts the LLM
received, every stored value decrypted by the app (tests/chaos/phiscan.py) and the
raw database/WAL bytes for PHI canaries. The session ends by printing the figures
(RELIABILITY.md §2.4); the status and LLM-turn counts come from what the chaos
clients observed (tests/chaos/api.py ``TALLY``).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bench.load import harness
from tests.chaos.api import TALLY
from tests.llm_server import Fault, LLMTestServer
from tests.phi_tripwire import find_canary, record_text

ROOT = Path(__file__).resolve().parents[2]
# Slack over LLM_DEADLINE_SECONDS before a call counts as past the deadline.
DEADLINE_SLACK_MS = 1000


@dataclass
class ChaosFigures:
    """RELIABILITY.md §2.4 figures, summed over the chaos tests of this session."""

    scenarios: list[str] = field(default_factory=list)
    faults_injected: int = 0
    messages_accepted: int = 0
    messages_lost: int = 0
    messages_duplicated: int = 0
    upstream_calls: int = 0
    breaker_transitions: int = 0
    transitions_expected: int = 0
    transitions_as_expected: int = 0
    past_deadline: int = 0
    deadline_seconds: set[float] = field(default_factory=set)
    canary_hits: int = 0

    def lines(self) -> list[str]:
        logical = len(TALLY.llm_turns)
        ratio = f"{self.upstream_calls / logical:.2f}" if logical else "n/a"
        deadlines = ", ".join(f"{d:g}" for d in sorted(self.deadline_seconds)) or "-"
        return [
            f"{self.faults_injected} faults injected across {len(self.scenarios)} "
            f"scenarios ({', '.join(self.scenarios)})",
            f"{self.messages_accepted} messages accepted; {self.messages_lost} lost; "
            f"{self.messages_duplicated} duplicated; {TALLY.statuses[500]} unhandled "
            f"500s (of {sum(TALLY.statuses.values())} responses)",
            f"{self.past_deadline} LLM calls exceeded their deadline "
            f"(LLM_DEADLINE_SECONDS {deadlines} s, +{DEADLINE_SLACK_MS} ms slack)",
            f"upstream LLM calls / logical calls = {self.upstream_calls}/{logical} = "
            f"{ratio} (logical: turns the clients saw answered by the LLM branch)",
            f"breaker transitions recorded (BreakerTransition rows): "
            f"{self.breaker_transitions}; sequences as the tests expected "
            f"{self.transitions_as_expected}/{self.transitions_expected}",
            f"PHI canary hits in server logs, prompts sent to the LLM, decrypted DB "
            f"values, raw DB/WAL bytes: {self.canary_hits}",
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
    expected_transitions: list[tuple[str, str]] | None = None
    # Set by a test that corrupts the database on purpose (#21): teardown then
    # reads no rows through SQL, only the raw bytes and the logs.
    corrupted: bool = False

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

    def llm_call_rows(self) -> list[dict[str, Any]]:
        """Every LLMCall row (codes and counts only), oldest first."""
        names = ("outcome", "upstream_calls", "retries", "status_code", "latency_ms")
        rows = self.rows(f"SELECT {', '.join(names)} FROM chat_llmcall ORDER BY id")  # noqa: S608
        return [dict(zip(names, row, strict=True)) for row in rows]

    def transitions(self) -> list[tuple[str, str]]:
        rows = self.rows(
            "SELECT from_state, to_state FROM chat_breakertransition ORDER BY id"
        )
        return [(str(a), str(b)) for a, b in rows]

    def breaker_document(self) -> dict[str, Any]:
        """The shared breaker state (database store): {"s": state, "cf": failures...}."""
        rows = self.rows(
            "SELECT value FROM stepsync_sharedstate WHERE key = 'breaker:llm'"
        )
        return json.loads(rows[0][0]) if rows and rows[0][0] else {}

    def logs(self) -> str:
        """Everything the app servers printed (stdout and stderr), all restarts."""
        paths = sorted(self.config.var_dir.glob("*.log"))
        return "\n".join(path.read_text("utf-8", "replace") for path in paths)

    def phi_hits(self) -> list[str]:
        """Where a canary appears: logs, prompts, decrypted values, raw bytes."""
        hits = []
        if find_canary(self.logs()):
            hits.append("server logs")
        if self.llm is not None:
            prompts = json.dumps([r.get("body") for r in self.llm.requests])
            if find_canary(prompts):
                hits.append("prompts the LLM received")
        db = self.config.db_path
        for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
            if path.exists() and find_canary(path.read_bytes().decode("latin-1")):
                hits.append(f"raw bytes of {path.name}")
        if not self.corrupted and (self.config.database_url or db.exists()):
            scan = json.loads(harness.run_python(self.config, "tests.chaos.phiscan"))
            hits += [f"decrypted {where}" for where in scan["hits"]]
        return hits

    def past_deadline(self) -> int:
        """LLM calls the server recorded as slower than its deadline (+ slack)."""
        limit = self.deadline_seconds() * 1000 + DEADLINE_SLACK_MS
        return sum(1 for row in self.llm_call_rows() if row["latency_ms"] > limit)

    def deadline_seconds(self) -> float:
        return float(self.config.env.get("LLM_DEADLINE_SECONDS", "45"))


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


def _record(deployment: Deployment, figures: ChaosFigures) -> list[str]:
    """Add what the deployment really did to the figures; return the PHI hits."""
    if deployment.llm is not None:
        figures.upstream_calls += deployment.llm.calls
    transitions: list[tuple[str, str]] = []
    if not deployment.corrupted:
        if deployment.llm is None:
            figures.upstream_calls += sum(
                int(row["upstream_calls"]) for row in deployment.llm_call_rows()
            )
        transitions = deployment.transitions()
        figures.past_deadline += deployment.past_deadline()
    figures.deadline_seconds.add(deployment.deadline_seconds())
    figures.breaker_transitions += len(transitions)
    if deployment.expected_transitions is not None:
        figures.transitions_expected += 1
        figures.transitions_as_expected += (
            transitions == deployment.expected_transitions
        )
    return deployment.phi_hits()


@pytest.fixture
def deploy(
    tmp_path: Path,
    migrated_template: harness.AppConfig,
    chaos_figures: ChaosFigures,
) -> Iterator[Callable[..., Deployment]]:
    """Factory: ``deploy(workers=2, llm=True, extra={...})`` -> a running Deployment.

    On teardown the servers stop, the figures are recorded and every deployment is
    scanned for canaries.
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
    hits = []
    for deployment in started:
        hits += _record(deployment, chaos_figures)
    chaos_figures.canary_hits += len(hits)
    for where in hits:
        # record_text only records text that holds a canary: hand it one.
        record_text(f"chaos deployment: {where}", "123-45-6789")
    assert hits == [], f"PHI canary found in: {hits}"
