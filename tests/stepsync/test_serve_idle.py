"""An idle server stays asleep: workers tick once a second and wake at once on a
signal; the supervisor and its job-runner watcher wait on their children instead
of polling them (stepsync.serve_workers)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import uvicorn

from bench.load import harness
from stepsync import serve_workers
from stepsync.serve_workers import QuietServer

IDLE_SECONDS = 5.0


def _quiet_server() -> QuietServer:
    return QuietServer(uvicorn.Config(app=lambda *a: None, date_header=True))


def test_a_worker_stops_at_once_on_a_signal_whatever_its_tick(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(serve_workers, "TICK_SECONDS", 3600.0)
    server = _quiet_server()

    async def main() -> None:
        asyncio.get_running_loop().call_later(
            0.05, server.handle_exit, signal.SIGTERM, None
        )
        await asyncio.wait_for(server.main_loop(), timeout=60)

    asyncio.run(main())  # would wait out the hour-long tick without the wake-up

    assert server.should_exit


def test_every_tick_refreshes_the_date_header(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(serve_workers, "TICK_SECONDS", 0.001)
    server = _quiet_server()
    server.config.load()
    counters: list[int] = []
    original = server.on_tick

    async def counting(counter: int) -> bool:
        counters.append(counter)
        if len(counters) == 5:
            server.should_exit = True
        return await original(counter)

    server.on_tick = counting  # type: ignore[method-assign]  # a spy on this instance

    asyncio.run(server.main_loop())

    assert len(counters) == 5
    assert all(counter % 10 == 0 for counter in counters)  # uvicorn's "once a second"
    assert any(name == b"date" for name, _ in server.server_state.default_headers)


@pytest.fixture(scope="module")
def idle_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[harness.Server]:
    config = harness.app_config(tmp_path_factory.mktemp("idle"))
    harness.prepare_database(config)
    app = harness.start_app(config, workers=2, jobs=True)
    try:
        yield app
    finally:
        app.stop()


def _main_thread_wakes(process: psutil.Process) -> int:
    # /proc/PID/status counts the main thread only: the event loop, or the
    # supervisor's wait.
    return int(process.num_ctx_switches().voluntary)


@pytest.mark.slow
@pytest.mark.sqlcipher_only
def test_an_idle_server_wakes_its_event_loops_about_once_a_second(
    idle_server: harness.Server,
) -> None:
    supervisor = psutil.Process(idle_server.pid)
    time.sleep(3)  # start-up's own work settles
    processes = [supervisor, *supervisor.children()]
    before = {p.pid: _main_thread_wakes(p) for p in processes}

    time.sleep(IDLE_SECONDS)

    rates = {
        p.pid: (_main_thread_wakes(p) - before[p.pid]) / IDLE_SECONDS for p in processes
    }
    workers = [rates[p.pid] for p in processes if "spawn_main" in " ".join(p.cmdline())]
    assert len(workers) == 2
    assert max(workers) < 4, rates  # uvicorn's own tick alone was 10 a second
    assert _main_thread_wakes(supervisor) - before[supervisor.pid] <= 2, rates


def _job_runner(supervisor: psutil.Process) -> psutil.Process | None:
    for child in supervisor.children():
        try:
            if "runjobs" in child.cmdline():
                return child
        except psutil.Error:  # killed, not yet reaped
            continue
    return None


def _wait_for_new_job_runner(supervisor: psutil.Process, old: int) -> int | None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        runner = _job_runner(supervisor)
        if runner is not None and runner.pid != old:
            return runner.pid
        time.sleep(0.2)
    return None


@pytest.mark.slow
@pytest.mark.sqlcipher_only
def test_a_killed_job_runner_is_started_again(idle_server: harness.Server) -> None:
    supervisor = psutil.Process(idle_server.pid)
    runner = _job_runner(supervisor)
    assert runner is not None

    os.kill(runner.pid, signal.SIGKILL)

    assert _wait_for_new_job_runner(supervisor, runner.pid) is not None


@pytest.mark.slow
@pytest.mark.sqlcipher_only
def test_stopping_the_server_stops_its_job_runner(tmp_path: Path) -> None:
    config = harness.app_config(tmp_path)
    harness.prepare_database(config)
    app = harness.start_app(config, workers=1, jobs=True)
    runner = _job_runner(psutil.Process(app.pid))
    assert runner is not None

    os.kill(app.pid, signal.SIGTERM)

    gone, alive = psutil.wait_procs([runner], timeout=30)
    assert not alive
    assert gone
