"""Figures of a load run: percentiles, errors by class, server CPU and memory."""

from __future__ import annotations

import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import psutil

from bench.load.client import Sample

MESSAGE_KINDS = ("rules", "quick", "llm", "stream")


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile (pct in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f} ms"


def busy_cores(before: Any, after: Any, seconds: float) -> float:
    """Cores the whole machine kept busy between two ``psutil.cpu_times()``
    (system-wide times are summed over all CPUs)."""
    idle = (after.idle + getattr(after, "iowait", 0.0)) - (
        before.idle + getattr(before, "iowait", 0.0)
    )
    return (sum(after) - sum(before) - idle) / max(seconds, 1e-9)


@dataclass
class ProcessTreeSampler:
    """Samples CPU seconds and RSS of a process and all its descendants."""

    root_pids: list[int]
    interval: float = 0.5
    recursive: bool = True  # False: these processes only, not their children
    rss_samples: list[tuple[float, int]] = field(default_factory=list)
    _cpu: dict[int, float] = field(default_factory=dict)
    _kernel: dict[int, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def processes(self) -> list[psutil.Process]:
        found: list[psutil.Process] = []
        for pid in self.root_pids:
            try:
                root = psutil.Process(pid)
                found.append(root)
                if self.recursive:
                    found.extend(root.children(recursive=True))
            except psutil.NoSuchProcess:
                continue
        return found

    def sample(self) -> tuple[float, int]:
        """(CPU seconds of the tree so far, RSS bytes now); dead processes keep theirs."""
        rss = 0
        for proc in self.processes():
            try:
                times = proc.cpu_times()
                self._cpu[proc.pid] = times.user + times.system
                self._kernel[proc.pid] = times.system
                rss += proc.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return sum(self._cpu.values()), rss

    def start(self) -> ProcessTreeSampler:
        self.sample()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            _, rss = self.sample()
            self.rss_samples.append((time.monotonic(), rss))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def cpu_seconds(self) -> float:
        return self.sample()[0]

    def kernel_seconds(self) -> float:
        """The part of ``cpu_seconds()`` spent in the kernel (system time)."""
        self.sample()
        return sum(self._kernel.values())

    def cpu_by_process(self) -> dict[int, float]:
        """CPU seconds so far of each process seen (dead ones keep theirs)."""
        self.sample()
        return dict(self._cpu)


@dataclass
class RunFigures:
    """What one run measured; ``lines()`` prints it, ``as_dict()`` feeds medians."""

    scenario: str
    duration_s: float
    samples: list[Sample]
    cpu_s: float
    rss_peak_mb: float
    rss_end_mb: float
    llm_median_ms: float | None = None
    # Seconds from the first request in which users are still arriving (their
    # first requests come on top of the others' turns); None: not split.
    ramp_window_s: float | None = None
    extra: dict[str, float | int | str] = field(default_factory=dict)
    soak: dict[str, float | None] = field(default_factory=dict)

    def messages(self) -> list[Sample]:
        return [s for s in self.samples if s.kind in MESSAGE_KINDS]

    def errors(self) -> Counter[str]:
        return Counter(s.error for s in self.samples if s.error)

    def as_dict(self) -> dict[str, float | None]:
        messages = self.messages()
        ok = [s for s in messages if not s.error]
        latencies = [s.latency_s for s in ok if s.kind != "stream"]
        ttfe = [s.ttfe_s for s in ok if s.kind == "stream" and s.ttfe_s is not None]
        llm = [s.latency_s for s in ok if s.source == "llm" and s.kind != "stream"]
        llm_count = sum(1 for s in ok if s.source == "llm")
        overhead = None
        if llm and self.llm_median_ms is not None:
            overhead = statistics.median(llm) - self.llm_median_ms / 1000
        return {
            "messages": float(len(messages)),
            "errors": float(sum(self.errors().values())),
            "throughput": len(ok) / self.duration_s if self.duration_s else 0.0,
            "p50": percentile(latencies, 50),
            "p95": percentile(latencies, 95),
            "p99": percentile(latencies, 99),
            "ttfe_p50": percentile(ttfe, 50),
            "ttfe_p95": percentile(ttfe, 95),
            "ttfe_p99": percentile(ttfe, 99),
            "llm_p50": percentile(llm, 50),
            "overhead": overhead,
            "cpu_ms_per_message": 1000 * self.cpu_s / len(ok) if ok else None,
            "cpu_ms_per_llm_message": (
                1000 * self.cpu_s / llm_count if llm_count == len(ok) and ok else None
            ),
            "cpu_s": self.cpu_s,
            "rss_peak_mb": self.rss_peak_mb,
            **self._after_ramp(ok),
            **self.soak,
        }

    def _after_ramp(self, ok: list[Sample]) -> dict[str, float | None]:
        """P99s of the requests that started after the ramp window (the steady
        state), so that a tail made by the arrivals shows as such."""
        if self.ramp_window_s is None or not ok:
            return {}
        after = started_after(self.samples, ok, self.ramp_window_s)
        return {
            "p99_after_ramp": percentile(
                [s.latency_s for s in after if s.kind != "stream"], 99
            ),
            "ttfe_p99_after_ramp": percentile(
                [
                    s.ttfe_s
                    for s in after
                    if s.kind == "stream" and s.ttfe_s is not None
                ],
                99,
            ),
        }

    def lines(self) -> list[str]:
        figures = self.as_dict()
        messages = self.messages()
        out = [
            f"scenario {self.scenario}: {len(messages)} messages in "
            f"{self.duration_s:.1f} s = {figures['throughput']:.1f} msg/s (successful)",
            f"  latency (non-streamed) P50 {ms(figures['p50'])}  P95 {ms(figures['p95'])}"
            f"  P99 {ms(figures['p99'])}",
        ]
        for kind in MESSAGE_KINDS:
            values = [s.latency_s for s in messages if s.kind == kind and not s.error]
            if values:
                out.append(
                    f"    {kind:<7} n={len(values):<6} P50 {ms(percentile(values, 50))}"
                    f"  P95 {ms(percentile(values, 95))}  P99 {ms(percentile(values, 99))}"
                )
        if figures["ttfe_p50"] is not None:
            out.append(
                f"  time to first streamed event P50 {ms(figures['ttfe_p50'])}"
                f"  P95 {ms(figures['ttfe_p95'])}  P99 {ms(figures['ttfe_p99'])}"
            )
        if self.ramp_window_s is not None:
            out.append(
                f"  started after the first {self.ramp_window_s:.0f} s (users arriving):"
                f" P99 {ms(figures.get('p99_after_ramp'))}"
                f", time to first event P99 {ms(figures.get('ttfe_p99_after_ramp'))}"
            )
        sources = Counter(s.source or "-" for s in messages if not s.error)
        out.append("  reply sources: " + _counts(sources))
        errors = self.errors()
        out.append("  errors by class: " + (_counts(errors) if errors else "none"))
        auth = [s for s in self.samples if s.kind in ("register", "token", "create")]
        if auth:
            out.append(
                "  setup calls: "
                + _counts(Counter(s.kind for s in auth))
                + f" (P50 {ms(percentile([s.latency_s for s in auth], 50))})"
            )
        if figures["overhead"] is not None:
            out.append(
                f"  pipeline overhead: median LLM-answered latency {ms(figures['llm_p50'])}"
                f" - LLM median {self.llm_median_ms:.0f} ms = {ms(figures['overhead'])}"
            )
        per_msg = figures["cpu_ms_per_message"]
        out.append(
            f"  server CPU {self.cpu_s:.1f} s"
            + (f" = {per_msg:.1f} ms per message" if per_msg is not None else "")
            + f"; RSS peak {self.rss_peak_mb:.0f} MB, end {self.rss_end_mb:.0f} MB"
        )
        for name, value in self.extra.items():
            out.append(f"  {name}: {value}")
        return out


def started_after(
    everything: list[Sample], chosen: list[Sample], seconds: float
) -> list[Sample]:
    """The ``chosen`` samples that started ``seconds`` or more after the first
    of ``everything`` started."""
    if not everything:
        return []
    first = min(s.finished_at - s.latency_s for s in everything)
    return [s for s in chosen if s.finished_at - s.latency_s >= first + seconds]


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{name} {n}" for name, n in counter.most_common())


def median_of(runs: list[dict[str, float | None]], key: str) -> float | None:
    """The median over runs; None when any run could not measure it (a miss)."""
    values = [run.get(key) for run in runs]
    if not values or any(value is None for value in values):
        return None
    return float(statistics.median(value for value in values if value is not None))


def worst_of(runs: list[dict[str, float | None]], key: str) -> float | None:
    """The largest value over runs (errors: the worst run decides)."""
    values = [run.get(key) for run in runs]
    if not values or any(value is None for value in values):
        return None
    return max(float(value) for value in values if value is not None)
