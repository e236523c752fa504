"""The memory soak's figures: RSS and active sessions over time, and their plateau.

The soak (issue 8 item 2: 20,000 messages over 2,000 conversations) runs with a
short session timeout so that the server's own job runner closes conversations
while users chat (the real ``cleanup_sessions`` job). A read-only probe
(bench/load/sessions_probe.py) counts the sessions every few seconds. A plateau
means: less than 10 % growth from half-time to the end of the load, for the server's
RSS (process tree) and for the active sessions; and once the load stops and the
timeout has passed, the job has closed every conversation.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from bench.load import harness

ROOT = Path(__file__).resolve().parents[2]
# Session timeout and cleanup interval of the soak's server (hours, minutes).
SESSION_TIMEOUT_HOURS = 0.01  # 36 s
CLEANUP_INTERVAL_MINUTES = 0.25  # 15 s: the runner's tick


class SessionsWatcher:
    """Runs the read-only sessions probe beside the soak and collects its lines."""

    def __init__(self, config: harness.AppConfig, interval: float = 5.0) -> None:
        self.lines: list[dict[str, Any]] = []
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.load.sessions_probe",
                "--interval",
                str(interval),
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
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def _window(values: list[float], start: float, end: float) -> float | None:
    """Median of the values between fractions ``start`` and ``end`` of the list."""
    if len(values) < 4:
        return None
    lo, hi = (
        int(len(values) * start),
        max(int(len(values) * end), int(len(values) * start) + 1),
    )
    return float(statistics.median(values[lo:hi]))


def growth_pct(values: list[float]) -> float | None:
    """Growth from half-time (45 to 55 % of the load) to its late steady state (80
    to 90 %), in percent. The last tenth is left out: users finishing at different
    times would hide a growth behind their ramp-down."""
    mid, end = _window(values, 0.45, 0.55), _window(values, 0.80, 0.90)
    if mid is None or end is None or mid == 0:
        return None
    return 100.0 * (end - mid) / mid


def cleanup_job_counts(config: harness.AppConfig) -> tuple[int, int]:
    """(runs, conversations closed) of the cleanup_sessions job so far."""
    rows = harness.db_rows(
        config, "SELECT counts FROM ops_jobrun WHERE job = 'cleanup_sessions'"
    )
    closed = 0
    for (counts,) in rows:
        doc = json.loads(counts) if isinstance(counts, str) else counts
        closed += int((doc or {}).get("closed", 0))
    return len(rows), closed


def soak_figures(
    rss: list[tuple[float, int]],
    probe: list[dict[str, Any]],
    load_seconds: float,
    final: dict[str, Any],
    job: tuple[int, int],
) -> dict[str, float | None]:
    """The plateau figures from samples taken during the load (``t`` < its end)."""
    start = rss[0][0] if rss else 0.0
    rss_load = [float(v) for t, v in rss if t - start <= load_seconds]
    active = [float(p["active"]) for p in probe if p["t"] <= load_seconds]
    return {
        "rss_growth_pct": growth_pct(rss_load),
        "active_growth_pct": growth_pct(active),
        "active_peak": max(active) if active else None,
        "sessions_left_open": float(
            final.get("active", 0) + final.get("expired_open", 0)
        )
        if final
        else None,
        "closed_end": float(final["closed"]) if final else None,
        "cleanup_runs": float(job[0]),
        "closed_by_job": float(job[1]),
    }


def soak_lines(
    rss: list[tuple[float, int]], probe: list[dict[str, Any]], figures: dict[str, Any]
) -> list[str]:
    """RSS and sessions over time (12 rows), then the plateau figures."""
    out = ["  memory soak (t, server RSS, active, expired not yet closed, closed):"]
    if rss:
        t0 = rss[0][0]
        for t, value in rss[:: max(1, len(rss) // 12)]:
            rel = t - t0
            near = min(probe, key=lambda p: abs(p["t"] - rel), default={})
            out.append(
                f"    {rel:6.0f} s  {value / 2**20:7.1f} MB  {near.get('active', '-')!s:>5}"
                f"  {near.get('expired_open', '-')!s:>4}  {near.get('closed', '-')!s:>5}"
            )

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value:+.1f} %"

    out.append(
        f"  growth from half-time to 80-90 % of the load: RSS "
        f"{pct(figures['rss_growth_pct'])},"
        f" active sessions {pct(figures['active_growth_pct'])} (target < 10 %)"
    )
    out.append(
        f"  cleanup_sessions job: {figures['cleanup_runs']:.0f} runs closed "
        f"{figures['closed_by_job']:.0f}; after the timeout {figures['closed_end']} "
        f"closed, {figures['sessions_left_open']} left open (target 0)"
    )
    return out
