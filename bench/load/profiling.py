"""Profile one app worker with py-spy while a load runs; summarise the hot spots."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import psutil

ROOT = str(Path(__file__).resolve().parents[2])
PROJECT_DIRS = ("chat/", "stepsync/", "compliance/", "accounts/", "ops/")


def worker_pids(master_pid: int) -> list[int]:
    """The uvicorn worker processes under a server's master (spawned children);
    neither the job runner child nor multiprocessing's resource tracker."""
    pids = []
    for child in psutil.Process(master_pid).children(recursive=True):
        try:
            cmdline = " ".join(child.cmdline())
        except psutil.NoSuchProcess:
            continue
        if "spawn_main" in cmdline:
            pids.append(child.pid)
    return pids or [master_pid]


def py_spy_path() -> str:
    local = Path(sys.executable).with_name("py-spy")
    found = str(local) if local.exists() else shutil.which("py-spy")
    if not found:
        raise RuntimeError("py-spy is not installed (make install-dev)")
    return found


def start_py_spy(
    pid: int, out: Path, duration: int, rate: int = 100
) -> subprocess.Popen:
    """Record raw (collapsed) stacks of ``pid`` for ``duration`` seconds."""
    cmd = [
        py_spy_path(),
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(duration),
        "--rate",
        str(rate),
        "--format",
        "raw",
        "--output",
        str(out),
        "--nonblocking",
    ]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _frame_label(frame: str) -> str:
    """``func (path/to/file.py:12)`` -> ``func (file.py)``, shortened for the table."""
    name, _, where = frame.partition(" (")
    path = where.rsplit(":", 1)[0]
    short = path.replace(ROOT + "/", "")
    if "site-packages/" in short:
        short = short.split("site-packages/", 1)[1]
    return f"{name} ({short})"


def summarise(raw_file: Path, *, seconds: float, rate: int, top: int = 15) -> list[str]:
    """Top functions by own and by inclusive time (project code) from raw stacks.

    py-spy records only threads that are running (not idle), so the sample count
    over ``seconds * rate`` is the worker's busy share across its threads.
    """
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw_file.read_text("utf-8", "replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if f and not f.startswith("process ")]
        if not frames:
            continue
        total += count
        own[_frame_label(frames[-1])] += count
        for label in {_frame_label(f) for f in frames}:
            if label.split(" (", 1)[-1].startswith(PROJECT_DIRS):
                inclusive[label] += count
    busy = max(total, 1)
    expected = max(seconds * rate, 1)
    lines = [
        f"py-spy: {total} busy samples = {100 * total / expected:.0f} % of one core"
    ]
    lines.append(f"  top {top} by own time (% of busy samples):")
    lines += [
        f"    {100 * n / busy:5.1f} %  {name}" for name, n in own.most_common(top)
    ]
    lines.append(f"  top {top} project functions by inclusive time:")
    lines += [
        f"    {100 * n / busy:5.1f} %  {name}" for name, n in inclusive.most_common(top)
    ]
    return lines


def _role(pid: int, master_pid: int) -> str:
    if pid == master_pid:
        return "master"
    try:
        cmdline = " ".join(psutil.Process(pid).cmdline())
    except psutil.NoSuchProcess:
        return "exited"
    if "spawn_main" in cmdline:
        return "worker"
    if "resource_tracker" in cmdline:
        return "resource tracker"
    return "other (job runner)"


def cpu_by_role(
    master_pid: int, before: dict[int, float], after: dict[int, float]
) -> str:
    """The CPU seconds each server process used between two samples, by role:
    "master 0.1 s, worker 7.0 s, worker 7.1 s, other (job runner) 0.2 s"."""
    parts = []
    for pid, seconds in sorted(after.items()):
        used = seconds - before.get(pid, 0.0)
        parts.append((_role(pid, master_pid), used))
    parts.sort(key=lambda part: (part[0] != "master", part[0]))
    return ", ".join(f"{role} {used:.1f} s" for role, used in parts)
