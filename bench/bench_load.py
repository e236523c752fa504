"""Load benchmark over HTTP against the production server (``make bench-load``).

Starts the project's OpenAI-compatible test server (tests/llm_server.py, in its own
process, with configurable latency), the app exactly as production runs it
(``python -m stepsync.serve --workers 2``, with its job runner, fresh var dir, fresh
keys, migrated), and simulated users on 127.0.0.1: a few register over HTTP, every
user logs in over HTTP (token), opens conversations and sends messages with think
time. Prints throughput, P50/P95/P99, time to first streamed event, errors by class
and the server's CPU and RSS per run, then per scenario the median of every figure
over the runs (errors: the worst run) against its target. A target whose figure
could not be measured is a miss. Bounded: each run stops at ``--max-requests`` or
its scenario's ``max_seconds``.

    make bench-load                                   # llm-300, rules-100,
                                                      # stream-300, overhead-100; 3 runs
    make bench-load BENCH_LOAD_ARGS="--scenario soak"  # 20,000 messages, 2,000
                                                      # conversations, real cleanup job
    .venv/bin/python bench/bench_load.py --scenario overhead-100 --runs 1 --profile
    .venv/bin/python bench/bench_load.py --scenario smoke --runs 1   # a tiny run
    .venv/bin/python bench/bench_load.py --scenario llm-300 --backing postgres
                              # the scale-out configuration: PostgreSQL + Redis

The machine's busy cores and the load generator's and LLM server's own CPU are
printed too: on 2 cores they tell a CPU ceiling from a lock ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.load import backing, harness, profiling, soak  # noqa: E402
from bench.load.client import ChatClient, Recorder, new_session  # noqa: E402
from bench.load.host import HostSpeedSampler, reference_loop_ms  # noqa: E402
from bench.load.llm_process import llm_server_call, start_llm_server  # noqa: E402
from bench.load.report import (  # noqa: E402
    ProcessTreeSampler,
    RunFigures,
    busy_cores,
    median_of,
    ms,
    worst_of,
)
from bench.load.scenarios import SCENARIOS, Scenario, run_users, with_overrides  # noqa: E402

PROFILE_RATE = 100
# Redis logical database of `--backing postgres` runs (tests use 12 and 13).
BENCH_REDIS_DB = 14
DEFAULT_SET = ("llm-300", "rules-100", "stream-300", "overhead-100")
LOGIN_CONCURRENCY = 8
SECONDS_FIGURES = {
    *("p50", "p95", "p99", "ttfe_p50", "ttfe_p95", "ttfe_p99", "llm_p50"),
    *("p99_after_ramp", "ttfe_p99_after_ramp"),
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="all", choices=[*SCENARIOS, "all"])
    parser.add_argument("--users", type=int)
    parser.add_argument("--messages", type=int)
    parser.add_argument("--conversations-per-user", type=int)
    parser.add_argument("--think", type=float, nargs=2, metavar=("MIN", "MAX"))
    parser.add_argument("--llm-latency-ms", type=float)
    parser.add_argument("--ttft-ms", type=float)
    parser.add_argument("--workers", type=int)
    parser.add_argument("--max-seconds", type=float)
    parser.add_argument("--max-requests", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3, help="medians over N runs")
    parser.add_argument(
        "--http-register-users",
        type=int,
        default=5,
        help="users that register over HTTP (every user logs in over HTTP)",
    )
    parser.add_argument(
        "--app-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for the app servers (repeatable), e.g. GIL_SWITCH_INTERVAL_MS=1",
    )
    parser.add_argument(
        "--backing",
        choices=("sqlite", "postgres"),
        default="sqlite",
        help="sqlite: the embedded default; postgres: PostgreSQL + Redis on "
        "127.0.0.1 (the scale-out configuration, a fresh database per run)",
    )
    parser.add_argument("--profile", action="store_true", help="py-spy one worker")
    parser.add_argument("--keep", action="store_true", help="keep the var dir")
    parser.add_argument("--json", type=Path, help="write the figures as JSON here")
    parser.add_argument(
        "--samples",
        type=Path,
        help="write every request of the last run here, one JSON object per line "
        "(kind, status, error, latency_s, ttfe_s, finished_at): where the tail is",
    )
    return parser.parse_args(argv)


def scenario_from(args: argparse.Namespace, name: str) -> Scenario:
    think = tuple(args.think) if args.think else None
    return with_overrides(
        SCENARIOS[name],
        users=args.users,
        messages=args.messages,
        conversations_per_user=args.conversations_per_user,
        think=think,
        llm_latency_ms=args.llm_latency_ms,
        ttft_ms=args.ttft_ms,
        workers=args.workers,
        max_seconds=args.max_seconds,
    )


async def log_in_users(
    base_url: str,
    seeded: list[dict[str, str]],
    register: int,
    recorder: Recorder,
) -> list[str]:
    """Register ``register`` users, then log every user in over HTTP; tokens."""
    accounts = [(u["username"], u["password"]) for u in seeded]
    gate = asyncio.Semaphore(LOGIN_CONCURRENCY)
    async with new_session() as session:
        for n in range(register):
            client = ChatClient(session, [base_url], recorder)
            username = f"http-user-{n}-{time.time_ns() % 10**8}"
            password = f"Load-{time.time_ns()}-pass"
            status = await client.register(username, password)
            if status != 201:
                raise RuntimeError(f"register answered HTTP {status}")
            accounts.append((username, password))

        async def login(username: str, password: str) -> str:
            async with gate:
                client = ChatClient(session, [base_url], recorder)
                return await client.login(username, password)

        return list(await asyncio.gather(*(login(u, p) for u, p in accounts)))


async def warm_up(base_url: str, tokens: list[str]) -> None:
    """A few turns so that imports, connections and caches are warm before timing."""
    async with new_session() as session:
        for token in tokens[:4]:
            client = ChatClient(session, [base_url], Recorder(), token=token)
            conversation = await client.create_conversation()
            await client.send(conversation, kind="rules", text="hi")


def app_settings(scenario: Scenario, overrides: list[str]) -> dict[str, str]:
    extra = dict(harness.UNLIMITED)
    if scenario.name == "soak":
        extra["SESSION_TIMEOUT_HOURS"] = str(soak.SESSION_TIMEOUT_HOURS)
        extra["CLEANUP_INTERVAL_MINUTES"] = str(soak.CLEANUP_INTERVAL_MINUTES)
    for item in overrides:
        name, _, value = item.partition("=")
        extra[name.strip()] = value
    return extra


def start_profile(app: harness.Server, scenario: Scenario, var_dir: Path) -> Any:
    worker = profiling.worker_pids(app.pid)[0]
    seconds = int(min(scenario.max_seconds, 600))
    spy = profiling.start_py_spy(worker, var_dir / "py-spy.raw", seconds, PROFILE_RATE)
    return spy, seconds, time.monotonic()


def finish_profile(profile: Any, duration: float, var_dir: Path) -> list[str]:
    """Wait for py-spy (stopped by SIGINT when the load ended) and summarise."""
    spy, seconds, _started = profile
    spy.wait(timeout=60)
    return profiling.summarise(
        var_dir / "py-spy.raw", seconds=min(duration, seconds), rate=PROFILE_RATE
    )


def finish_soak(
    config: harness.AppConfig,
    sampler: ProcessTreeSampler,
    watcher: soak.SessionsWatcher,
    duration: float,
) -> tuple[dict[str, float | None], list[str]]:
    """Wait past the timeout and two cleanup rounds, then the plateau figures."""
    time.sleep(
        soak.SESSION_TIMEOUT_HOURS * 3600 + soak.CLEANUP_INTERVAL_MINUTES * 120 + 8
    )
    watcher.stop()
    final = watcher.lines[-1] if watcher.lines else {}
    figures = soak.soak_figures(
        sampler.rss_samples,
        watcher.lines,
        duration,
        final,
        soak.cleanup_job_counts(config),
    )
    return figures, soak.soak_lines(sampler.rss_samples, watcher.lines, figures)


def write_samples(path: Path, samples: list[Any]) -> None:
    """The run's requests as JSON lines (no message text is ever in a Sample)."""
    with path.open("w", encoding="utf-8") as out:
        for sample in samples:
            out.write(json.dumps(dataclasses.asdict(sample)) + "\n")


def run_once(scenario: Scenario, args: argparse.Namespace, run: int) -> RunFigures:
    var_dir = Path(tempfile.mkdtemp(prefix=f"stepsync-load-{scenario.name}-"))
    llm = start_llm_server(
        var_dir,
        latency_ms=scenario.llm_latency_ms,
        ttft_ms=scenario.ttft_ms,
        tokens=scenario.stream_tokens,
    )
    database = None
    redis_url = ""
    if args.backing == "postgres":
        database = backing.fresh_postgres_database(prefix="stepsync_bench")
        redis_url = backing.redis_db_url(BENCH_REDIS_DB)
        backing.redis_flush(redis_url)
    config = harness.app_config(
        var_dir,
        llm_base_url=llm.base_url + "/v1",
        log_level="WARNING",
        database_url=database.url if database else "",
        redis_url=redis_url,
        extra=app_settings(scenario, args.app_env),
    )
    app = watcher = None
    try:
        harness.prepare_database(config)
        register = min(args.http_register_users, scenario.users)
        seeded = harness.seed_users(
            config, count=scenario.users - register, prefix="load"
        )
        app = harness.start_app(config, workers=scenario.workers, jobs=True)
        setup = Recorder()
        tokens = asyncio.run(log_in_users(app.base_url, seeded, register, setup))
        asyncio.run(warm_up(app.base_url, tokens))
        llm_server_call(llm, "/_reset", {})
        host_before = reference_loop_ms()
        sampler = ProcessTreeSampler([app.pid]).start()
        cpu_before = sampler.cpu_seconds()
        kernel_before = sampler.kernel_seconds()
        by_process_before = sampler.cpu_by_process()
        others = ProcessTreeSampler([llm.pid, os.getpid()], recursive=False)
        others_before = others.cpu_seconds()
        machine_before = psutil.cpu_times()
        profile = start_profile(app, scenario, var_dir) if args.profile else None
        if scenario.name == "soak":
            watcher = soak.SessionsWatcher(config)
        print(
            f"run {run}: {scenario.name}, {len(tokens)} users x "
            f"{scenario.conversations_per_user * scenario.messages} messages, "
            f"think {scenario.think[0]}-{scenario.think[1]} s, LLM "
            f"{scenario.llm_latency_ms:.0f} ms, {scenario.workers} workers ...",
            flush=True,
        )
        host = HostSpeedSampler().start()
        recorder, state, duration = asyncio.run(
            run_users([app.base_url], tokens, scenario, max_requests=args.max_requests)
        )
        host_during = host.stop()
        cpu = sampler.cpu_seconds() - cpu_before
        kernel = sampler.kernel_seconds() - kernel_before
        by_process = profiling.cpu_by_role(
            app.pid, by_process_before, sampler.cpu_by_process()
        )
        other_cpu = others.cpu_seconds() - others_before
        machine_busy = busy_cores(machine_before, psutil.cpu_times(), duration)
        if profile is not None and profile[0].poll() is None:
            profile[0].send_signal(signal.SIGINT)  # the load is over: stop sampling
        soak_figures, soak_text = (
            finish_soak(config, sampler, watcher, duration) if watcher else ({}, [])
        )
        sampler.stop()
        stats = llm_server_call(llm, "/_stats")
        persistence = harness.check_persistence(config, list(state.acknowledged))
        rss = [value for _, value in sampler.rss_samples] or [0]
        figures = RunFigures(
            scenario=scenario.name,
            duration_s=duration,
            samples=setup.samples + recorder.samples,
            cpu_s=cpu,
            rss_peak_mb=max(rss) / 2**20,
            rss_end_mb=rss[-1] / 2**20,
            llm_median_ms=stats.get("served_median_ms"),
            ramp_window_s=scenario.arrival_window(),
            extra={
                "CPU of the load generator and the LLM test server": (
                    f"{other_cpu:.1f} s ({other_cpu / max(duration, 1e-9):.2f} cores)"
                ),
                "server CPU by process": by_process,
                "server CPU in the kernel (system time)": (
                    f"{kernel:.1f} s ({100 * kernel / max(cpu, 1e-9):.0f} %)"
                ),
                "host speed (reference loop before / after the load)": (
                    f"{host_before:.0f} / {reference_loop_ms():.0f} ms of CPU; "
                    f"after 130 ms idle {reference_loop_ms(idle_s=0.13):.0f} ms"
                ),
                "host speed during the load (a small block every 0.5 s)": (
                    "-"
                    if host_during is None
                    else f"median {host_during[0]:.2f} ms, fastest "
                    f"{host_during[1]:.2f} ms ({host_during[0] / host_during[1]:.1f}x)"
                ),
                "machine CPU busy": f"{machine_busy:.2f} of {psutil.cpu_count()} cores",
                "LLM calls (test server)": stats["calls"],
                "LLM max in flight": stats["max_in_flight"],
                "exactly once": (
                    f"{persistence.acknowledged} acknowledged, "
                    f"{persistence.missing} missing, {persistence.duplicated} duplicated"
                ),
            },
            soak=soak_figures,
        )
        if args.samples:
            write_samples(args.samples, recorder.samples)
        for line in figures.lines() + soak_text:
            print(line, flush=True)
        if profile is not None:
            for line in finish_profile(profile, duration, var_dir):
                print(line, flush=True)
        return figures
    finally:
        if watcher is not None:
            watcher.stop()
        if app is not None:
            app.stop()
        llm.stop()
        if database is not None:
            database.drop()
            backing.redis_flush(redis_url)
        if args.keep:
            print(f"  var dir kept: {var_dir}")
        else:
            shutil.rmtree(var_dir, ignore_errors=True)


def shown(key: str, value: float | None) -> str:
    if value is None:
        return "not measured"
    if key in SECONDS_FIGURES or key == "overhead":
        return ms(value)
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def summarise(
    scenario: Scenario, runs: list[dict[str, float | None]]
) -> tuple[dict[str, float | None], list[str], int]:
    """Medians of every figure (errors: the worst run), the target lines, misses."""
    keys = sorted({key for run in runs for key in run})
    summary = {key: median_of(runs, key) for key in keys}
    summary["errors"] = worst_of(runs, "errors")
    lines = [f"== {scenario.name}: medians of {len(runs)} run(s); errors = worst run"]
    lines += [f"  {key:<24} {shown(key, summary[key])}" for key in keys]
    misses = 0
    for key, target in scenario.targets.items():
        value = summary.get(key)
        ok = value is not None and value <= target
        misses += not ok
        verdict = "PASS" if ok else "MISS"
        lines.append(
            f"  target {key} <= {shown(key, target)}: {shown(key, value)} {verdict}"
        )
    return summary, lines, misses


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    nofile = harness.raise_open_files_limit()
    names = list(DEFAULT_SET) if args.scenario == "all" else [args.scenario]
    results: dict[str, Any] = {}
    missed = 0
    print(f"bench_load: open files limit {nofile}; {args.runs} run(s)", flush=True)
    for name in names:
        scenario = scenario_from(args, name)
        runs = [run_once(scenario, args, n + 1).as_dict() for n in range(args.runs)]
        summary, lines, misses = summarise(scenario, runs)
        missed += misses
        results[name] = {"runs": runs, "summary": summary}
        for line in lines:
            print(line, flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
