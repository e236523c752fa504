"""SQLCipher page HMAC: CPU per page read with HMAC_SHA512 (SQLCipher 4's default,
what the project uses) against HMAC_SHA256 (faster where the CPU has SHA-NI).

Every page SQLite reads from an encrypted file is authenticated and decrypted; a
page cache too small to hold the table makes each scan read every page again.
Prints the CPU microseconds per page read for each algorithm, alternating them,
median of ROUNDS. Works in a temporary folder with a generated raw key.

Run: .venv/bin/python bench/bench_page_hmac.py
"""

from __future__ import annotations

import secrets
import statistics
import tempfile
import time
from pathlib import Path

from sqlcipher3 import dbapi2 as sqlcipher

ROWS = 50_000
SCANS = 20
ROUNDS = 3
ALGORITHMS = ("HMAC_SHA512", "HMAC_SHA256")


def _open(path: Path, key_hex: str, algorithm: str) -> sqlcipher.Connection:
    conn = sqlcipher.connect(str(path))
    conn.execute(f"PRAGMA key = \"x'{key_hex}'\"")
    conn.execute(f"PRAGMA cipher_hmac_algorithm = {algorithm}")
    return conn


def _build(path: Path, key_hex: str, algorithm: str) -> None:
    conn = _open(path, key_hex, algorithm)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    conn.executemany("INSERT INTO t (v) VALUES (?)", [("x" * 200,)] * ROWS)
    conn.commit()
    conn.close()


def _us_per_page(path: Path, key_hex: str, algorithm: str) -> float:
    conn = _open(path, key_hex, algorithm)
    conn.execute("PRAGMA cache_size = 10")  # every scan reads every page again
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    query = "SELECT count(*), sum(length(v)) FROM t"
    conn.execute(query).fetchone()
    started = time.process_time()
    for _ in range(SCANS):
        conn.execute(query).fetchone()
    used = time.process_time() - started
    conn.close()
    return used / SCANS / pages * 1e6


def main() -> None:
    key_hex = secrets.token_hex(32)
    with tempfile.TemporaryDirectory(prefix="stepsync-hmac-") as folder:
        paths = {a: Path(folder) / f"{a}.db" for a in ALGORITHMS}
        for algorithm, path in paths.items():
            _build(path, key_hex, algorithm)
        samples: dict[str, list[float]] = {a: [] for a in ALGORITHMS}
        for _ in range(ROUNDS):
            for algorithm, path in paths.items():
                samples[algorithm].append(_us_per_page(path, key_hex, algorithm))
    for algorithm, values in samples.items():
        runs = ", ".join(f"{v:.2f}" for v in values)
        print(
            f"{algorithm}: {statistics.median(values):.2f} us CPU per page read "
            f"(median of {ROUNDS}; runs {runs})"
        )


if __name__ == "__main__":
    main()
