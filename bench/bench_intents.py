"""Benchmark the intent classifier: accuracy per split and intent, confusions, speed."""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chat.intents import classify  # noqa: E402

PHRASINGS = ROOT / "tests" / "data" / "intent_phrasings.jsonl"
ROUNDS = 20


def load_rows() -> list[dict]:
    with PHRASINGS.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def accuracy(rows: list[dict]) -> str:
    hits = sum(classify(r["text"]).intent == r["intent"] for r in rows)
    return f"{hits}/{len(rows)} = {hits / len(rows):.1%}" if rows else "n/a"


def report_accuracy(rows: list[dict]) -> None:
    print(f"phrasings: {len(rows)}")
    print(f"overall accuracy: {accuracy(rows)}")
    for split in sorted({r.get("split", "train") for r in rows}):
        part = [r for r in rows if r.get("split", "train") == split]
        print(f"  split {split:5}: {accuracy(part)}")
    print("per intent:")
    for intent in sorted({r["intent"] for r in rows}):
        print(f"  {intent:22} {accuracy([r for r in rows if r['intent'] == intent])}")


def report_confusions(rows: list[dict]) -> None:
    pairs = Counter(
        (r["intent"], got)
        for r in rows
        if (got := classify(r["text"]).intent) != r["intent"]
    )
    print("confusion pairs (expected -> got: count):")
    for (expected, got), count in pairs.most_common():
        print(f"  {expected} -> {got}: {count}")
    if not pairs:
        print("  none")


def report_speed(rows: list[dict]) -> None:
    texts = [r["text"] for r in rows]
    start = time.perf_counter()
    for _ in range(ROUNDS):
        for text in texts:
            classify(text)
    per_message = (time.perf_counter() - start) / (ROUNDS * len(texts))
    print(f"classify time per message: {per_message * 1e6:.1f} µs (warm cache)")
    unseen = [f"{t} variant{n}" for n, t in enumerate(texts)]
    start = time.perf_counter()
    for text in unseen:
        classify(text)
    cold = (time.perf_counter() - start) / len(unseen)
    print(f"classify time per message: {cold * 1e6:.1f} µs (with an unseen word)")


def main() -> None:
    rows = load_rows()
    report_accuracy(rows)
    report_confusions(rows)
    report_speed(rows)


if __name__ == "__main__":
    main()
