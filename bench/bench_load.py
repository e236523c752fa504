"""Load benchmark over HTTP against the production server (``make bench-load``).

Starts the OpenAI-compatible stub (configurable latency), the app exactly as
production runs it (``python -m stepsync.serve --workers 2``, fresh var dir, fresh
keys, migrated), and simulated users on 127.0.0.1. Prints throughput, P50/P95/P99,
time to first streamed event, errors by class and the server's CPU and RSS.
Bounded: every run stops at ``--max-requests`` or ``--max-seconds``.

Run: .venv/bin/python bench/bench_load.py --scenario llm-300 [--runs 3] [--profile]
     .venv/bin/python bench/bench_load.py --scenario smoke --users 5   # a tiny run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.load import harness, profiling  # noqa: E402
from bench.load.client import ChatClient, Recorder, new_session  # noqa: E402
from bench.load.report import (  # noqa: E402
    ProcessTreeSampler,
    RunFigures,
    median_of,
    ms,
)
from bench.load.scenarios import SCENARIOS, Scenario, run_users, with_overrides  # noqa: E402

PROFILE_RATE = 100


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="smoke", choices=[*SCENARIOS, "all"])
    parser.add_argument("--users", type=int)
    parser.add_argument("--messages", type=int)
    parser.add_argument("--conversations-per-user", type=int)
    parser.add_argument("--think", type=float, nargs=2, metavar=("MIN", "MAX"))
    parser.add_argument("--llm-latency-ms", type=float)
    parser.add_argument("--ttft-ms", type=float)
    parser.add_argument("--workers", type=int)
    parser.add_argument("--max-seconds", type=float)
    parser.add_argument("--max-requests", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=1, help="medians over N runs")
    parser.add_argument(
        "--http-auth-users",
        type=int,
        default=2,
        help="users that register and log in over HTTP (the rest are seeded)",
    )
    parser.add_argument("--profile", action="store_true", help="py-spy one worker")
    parser.add_argument("--keep", action="store_true", help="keep the var dir")
    parser.add_argument("--json", type=Path, help="write the figures as JSON here")
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


async def http_auth_users(base_url: str, count: int, recorder: Recorder) -> list[str]:
    """Register and token-login ``count`` users over HTTP; return their tokens."""
    tokens = []
    async with new_session() as session:
        for n in range(count):
            client = ChatClient(session, [base_url], recorder)
            username = f"http-user-{n}-{time.time_ns() % 10**8}"
            password = f"Load-{time.time_ns()}-pass"
            status = await client.register(username, password)
            if status != 201:
                raise RuntimeError(f"register answered HTTP {status}")
            tokens.append(await client.login(username, password))
    return tokens


async def warm_up(base_url: str, tokens: list[str]) -> None:
    """A few turns so that imports, connections and caches are warm before timing."""
    async with new_session() as session:
        for token in tokens[:4]:
            client = ChatClient(session, [base_url], Recorder(), token=token)
            conversation = await client.create_conversation()
            await client.send(conversation, kind="rules", text="hi")


class SoakWatcher:
    """Runs the cleanup/active-session probe beside the soak and collects its lines."""

    def __init__(self, config: harness.AppConfig, idle_seconds: float) -> None:
        self.lines: list[dict[str, Any]] = []
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.load.sessions_probe",
                "--interval",
                "5",
                "--idle-seconds",
                str(idle_seconds),
            ],
            cwd=ROOT,
            env=config.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                self.lines.append(json.loads(line))

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def soak_report(sampler: ProcessTreeSampler, watcher: SoakWatcher) -> list[str]:
    """RSS and active sessions over time, and the growth over the second half."""
    rss = sampler.rss_samples
    out = ["  memory soak (t, server RSS, active sessions, closed by cleanup):"]
    if not rss:
        return out
    t0 = rss[0][0]
    step = max(1, len(rss) // 12)
    probe = watcher.lines
    for t, value in rss[::step]:
        rel = t - t0
        near = min(probe, key=lambda p: abs(p["t"] - rel), default=None)
        active = near["active"] if near else "-"
        closed = sum(p["closed"] for p in probe if p["t"] <= rel)
        out.append(
            f"    {rel:6.0f} s  {value / 2**20:7.1f} MB  {active!s:>6}  {closed}"
        )
    half = len(rss) // 2
    if half >= 4:
        mid = _window_median([v for _, v in rss[half - 3 : half + 3]])
        end = _window_median([v for _, v in rss[-6:]])
        growth = 100 * (end - mid) / mid
        out.append(
            f"  RSS growth over the second half: {growth:+.1f} % (target < 10 %)"
        )
        actives = [p["active"] for p in probe]
        if len(actives) >= 4:
            a_mid = actives[len(actives) // 2]
            a_end = max(actives[-2:])
            out.append(
                f"  active sessions at half-time {a_mid}, at the end {a_end}; "
                f"closed by cleanup {sum(p['closed'] for p in probe)}"
            )
    return out


def _window_median(values: list[int]) -> float:
    ordered = sorted(values)
    return float(ordered[len(ordered) // 2])


def run_once(scenario: Scenario, args: argparse.Namespace, run: int) -> RunFigures:
    var_dir = Path(tempfile.mkdtemp(prefix=f"stepsync-load-{scenario.name}-"))
    stub = harness.start_llm_stub(
        var_dir,
        latency_ms=scenario.llm_latency_ms,
        ttft_ms=scenario.ttft_ms,
        tokens=scenario.stream_tokens,
    )
    soak = scenario.name == "soak"
    extra = dict(harness.UNLIMITED)
    if soak:
        extra["SESSION_TIMEOUT_HOURS"] = "1"
    config = harness.app_config(
        var_dir,
        llm_base_url=stub.base_url + "/v1",
        log_level="WARNING",
        extra=extra,
    )
    app = None
    watcher = None
    try:
        harness.prepare_database(config)
        http_users = min(args.http_auth_users, scenario.users)
        seeded = harness.seed_users(
            config, count=scenario.users - http_users, prefix="load"
        )
        app = harness.start_app(config, workers=scenario.workers, jobs=True)
        setup = Recorder()
        tokens = asyncio.run(http_auth_users(app.base_url, http_users, setup))
        tokens += [user["token"] for user in seeded]
        asyncio.run(warm_up(app.base_url, tokens))
        harness.stub_call(stub, "/_reset", {})
        sampler = ProcessTreeSampler([app.pid]).start()
        cpu_before = sampler.cpu_seconds()
        spy = None
        if args.profile:
            worker = profiling.worker_pids(app.pid)[0]
            spy_seconds = int(min(scenario.max_seconds, 600))
            spy_out = var_dir / "py-spy.raw"
            spy = profiling.start_py_spy(worker, spy_out, spy_seconds, PROFILE_RATE)
            spy_started = time.monotonic()
        if soak:
            watcher = SoakWatcher(config, idle_seconds=20.0)
        print(
            f"run {run}: {scenario.name}, {scenario.users} users x "
            f"{scenario.conversations_per_user * scenario.messages} messages, "
            f"think {scenario.think[0]}-{scenario.think[1]} s, LLM "
            f"{scenario.llm_latency_ms:.0f} ms, {scenario.workers} workers ...",
            flush=True,
        )
        recorder, state, duration = asyncio.run(
            run_users(
                [app.base_url],
                tokens,
                scenario,
                max_requests=args.max_requests,
            )
        )
        cpu = sampler.cpu_seconds() - cpu_before
        sampler.stop()
        if watcher is not None:
            time.sleep(6)  # one more cleanup round after the last message
            watcher.stop()
        stub_stats = harness.stub_call(stub, "/_stats")
        persistence = harness.check_persistence(config, list(state.acknowledged))
        rss = [value for _, value in sampler.rss_samples] or [0]
        figures = RunFigures(
            scenario=scenario.name,
            duration_s=duration,
            samples=setup.samples + recorder.samples,
            cpu_s=cpu,
            rss_peak_mb=max(rss) / 2**20,
            rss_end_mb=rss[-1] / 2**20,
            llm_median_ms=stub_stats.get("served_median_ms"),
            extra={
                "LLM calls (stub)": stub_stats["calls"],
                "LLM max in flight": stub_stats["max_in_flight"],
                "exactly once": (
                    f"{persistence.acknowledged} acknowledged, "
                    f"{persistence.missing} missing, {persistence.duplicated} duplicated"
                ),
            },
        )
        for line in figures.lines():
            print(line, flush=True)
        if watcher is not None:
            for line in soak_report(sampler, watcher):
                print(line, flush=True)
        if spy is not None:
            spy.wait(
                timeout=max(5.0, spy_seconds - (time.monotonic() - spy_started) + 30)
            )
            spy_time = min(duration, spy_seconds)
            for line in profiling.summarise(
                var_dir / "py-spy.raw", seconds=spy_time, rate=PROFILE_RATE
            ):
                print(line, flush=True)
        return figures
    finally:
        if watcher is not None and watcher.proc.poll() is None:
            watcher.stop()
        if app is not None:
            app.stop()
        stub.stop()
        if not args.keep:
            import shutil

            shutil.rmtree(var_dir, ignore_errors=True)
        else:
            print(f"  var dir kept: {var_dir}")


def check_targets(scenario: Scenario, medians: dict[str, float | None]) -> list[str]:
    out = []
    for key, target in scenario.targets.items():
        value = medians.get(key)
        if value is None:
            out.append(f"  target {key} <= {target}: not measured")
            continue
        ok = value <= target
        shown = (
            ms(value)
            if key not in ("errors", "cpu_ms_per_llm_message")
            else f"{value:g}"
        )
        limit = (
            ms(target)
            if key not in ("errors", "cpu_ms_per_llm_message")
            else f"{target:g}"
        )
        out.append(f"  target {key} <= {limit}: {shown} {'PASS' if ok else 'MISS'}")
    return out


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    nofile = harness.raise_open_files_limit()
    names = [n for n in SCENARIOS if n not in ("smoke", "soak")]
    names = names if args.scenario == "all" else [args.scenario]
    results: dict[str, Any] = {}
    missed = 0
    print(f"bench_load: open files limit {nofile}", flush=True)
    for name in names:
        scenario = scenario_from(args, name)
        runs = [run_once(scenario, args, n + 1).as_dict() for n in range(args.runs)]
        keys = sorted({k for run in runs for k in run})
        medians = {key: median_of(runs, key) for key in keys}
        results[name] = {"runs": runs, "medians": medians}
        print(f"== {name}: medians of {len(runs)} run(s)")
        for line in check_targets(scenario, medians):
            missed += "MISS" in line
            print(line)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
