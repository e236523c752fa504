"""Run a module under a wall clock that a control file can jump (chaos tests only).

``python -m tests.chaos.clockshim CONTROL -m stepsync.serve --workers 1 ...`` runs
the server in this process (one worker: uvicorn does not spawn) with time-machine
moving ``time.time`` and ``datetime.now`` by the offset in seconds written to
CONTROL; ``time.monotonic`` is left alone, as a real clock step would leave it.
Each applied offset is acknowledged in ``CONTROL.ack``.
"""

from __future__ import annotations

import runpy
import sys
import threading
import time
from pathlib import Path

import time_machine


class MovableClock:
    """Applies the control file's offset whenever it changes."""

    def __init__(self, control: Path) -> None:
        self.control = control
        self.offset = 0.0
        self.traveller: time_machine.travel | None = None

    def apply(self, offset: float) -> None:
        if self.traveller is not None:
            self.traveller.stop()
        self.traveller = time_machine.travel(time.time() + offset, tick=True)
        self.traveller.start()
        self.offset = offset
        Path(f"{self.control}.ack").write_text(repr(offset))

    def watch(self) -> None:
        while True:
            try:
                wanted = float(self.control.read_text().strip() or 0)
            except (OSError, ValueError):
                wanted = self.offset
            if wanted != self.offset:
                self.apply(wanted)
            time.sleep(0.05)


def main() -> None:
    control = Path(sys.argv[1])
    if sys.argv[2] != "-m":
        raise SystemExit("usage: clockshim CONTROL -m MODULE [ARGS...]")
    module = sys.argv[3]
    sys.argv = [module, *sys.argv[4:]]
    clock = MovableClock(control)
    threading.Thread(target=clock.watch, name="clockshim", daemon=True).start()
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
