"""How fast this VM is while a benchmark runs: a fixed pure-Python workload timed.

This VM's speed swings by about 30% within minutes, and the same work costs it
1.5 to 2 times the CPU after an idle gap of ~100 ms (bench_turn --gap-ms 130 against
back to back): a run's CPU per message is read against these figures.
"""

from __future__ import annotations

import json
import statistics
import threading
import time

DOC = {f"key{i}": [i, str(i) * 3, {"n": i}] for i in range(200)}


def _block(iterations: int) -> None:
    for _ in range(iterations):
        text = json.dumps(DOC)
        back = json.loads(text)
        "".join(sorted(back)).upper().split("KEY")


def reference_loop_ms(repeat: int = 9, idle_s: float = 0.0) -> float:
    """CPU milliseconds of the fixed workload (JSON, dicts, strings), median of
    ``repeat``: the host's speed at this moment. With ``idle_s`` each repetition
    follows that long a sleep (not counted), as a worker's turns do under load."""
    samples = []
    for _ in range(repeat):
        if idle_s:
            time.sleep(idle_s)
        started = time.process_time()
        _block(40)
        samples.append((time.process_time() - started) * 1000)
    return statistics.median(samples)


class HostSpeedSampler:
    """Times a small block of the workload (this thread's CPU) every ``interval``
    seconds while a run lasts: the host's speed during the run, at idle-gap pace.
    ``summary()`` gives the median and the fastest sample in milliseconds."""

    def __init__(self, interval: float = 0.5, iterations: int = 4) -> None:
        self.interval, self.iterations = interval, iterations
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> HostSpeedSampler:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            started = time.thread_time()
            _block(self.iterations)
            self.samples.append((time.thread_time() - started) * 1000)

    def stop(self) -> tuple[float, float] | None:
        """(median, fastest) sample in ms, or None when none was taken."""
        self._stop.set()
        self._thread.join(timeout=5)
        if not self.samples:
            return None
        return statistics.median(self.samples), min(self.samples)
