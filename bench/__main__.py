"""`python -m bench` (make bench): run every benchmark script in this folder in turn."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Heavy load benchmarks have their own make target (bench-load) and are skipped here.
SKIP = {"bench_load.py"}


def main() -> int:
    failures = 0
    for script in sorted(HERE.glob("bench_*.py")):
        if script.name in SKIP:
            continue
        print(f"\n===== {script.stem} =====", flush=True)
        result = subprocess.run(
            [sys.executable, str(script)], cwd=HERE.parent, check=False
        )
        failures += result.returncode != 0
    print(f"\nbench: {failures} script(s) failed" if failures else "\nbench: all done")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
