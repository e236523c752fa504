"""Sanitizer benchmark: recall/precision on the labelled corpora, plus throughput.

Run: .venv/bin/python bench/bench_sanitizer.py [--corpus original|heldout|all] [-v]
"""

import argparse
import json
import random
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from chat.sanitizer import Span, sanitize  # noqa: E402

DATA = ROOT / "tests" / "data"
LABELLED = DATA / "phi_labelled.jsonl"
CLEAN = DATA / "phi_clean.jsonl"
# A second corpus written independently of the rules (see bench/build_heldout.py).
HELDOUT = DATA / "phi_heldout.jsonl"
CLEAN_HELDOUT = DATA / "phi_clean_heldout.jsonl"
CORPORA = {
    "original": ((LABELLED,), (CLEAN,)),
    "heldout": ((HELDOUT,), (CLEAN_HELDOUT,)),
    "all": ((LABELLED, HELDOUT), (CLEAN, CLEAN_HELDOUT)),
}


@dataclass
class Score:
    """Entity-level counts per type, and false positives on clean messages."""

    gold: Counter[str] = field(default_factory=Counter)
    found: Counter[str] = field(default_factory=Counter)
    predicted: Counter[str] = field(default_factory=Counter)
    correct: Counter[str] = field(default_factory=Counter)
    clean_total: int = 0
    clean_flagged: int = 0
    missed_ids: list[str] = field(default_factory=list)
    flagged_ids: list[str] = field(default_factory=list)

    def recall(self, kind: str | None = None) -> float:
        gold = self.gold[kind] if kind else sum(self.gold.values())
        found = self.found[kind] if kind else sum(self.found.values())
        return found / gold if gold else 1.0

    def precision(self, kind: str) -> float:
        return (
            self.correct[kind] / self.predicted[kind] if self.predicted[kind] else 1.0
        )

    def fp_share(self) -> float:
        return self.clean_flagged / self.clean_total if self.clean_total else 0.0


def load(path: Path) -> list[dict]:
    """Read one JSON object per non-empty line."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _detected(text: str, gold: dict, spans: tuple[Span, ...]) -> bool:
    """Every letter/digit of the entity is covered by spans of the entity's type."""
    start, end = gold["start"], gold["end"]
    same = [
        s for s in spans if s.type == gold["type"] and s.start < end and start < s.end
    ]
    covered = {i for s in same for i in range(max(s.start, start), min(s.end, end))}
    return bool(same) and all(
        i in covered for i in range(start, end) if text[i].isalnum()
    )


def _score_labelled(score: Score, record: dict) -> None:
    spans = sanitize(record["text"]).spans
    for gold in record["entities"]:
        score.gold[gold["type"]] += 1
        if _detected(record["text"], gold, spans):
            score.found[gold["type"]] += 1
        else:
            score.missed_ids.append(f"{record['id']}:{gold['type']}")
    for span in spans:
        score.predicted[span.type] += 1
        if any(
            g["type"] == span.type and g["start"] < span.end and span.start < g["end"]
            for g in record["entities"]
        ):
            score.correct[span.type] += 1


def evaluate(labelled: list[dict], clean: list[dict]) -> Score:
    """Score the sanitizer on labelled PHI messages and on PHI-free messages."""
    score = Score()
    for record in labelled:
        _score_labelled(score, record)
    for record in clean:
        spans = sanitize(record["text"]).spans
        score.clean_total += 1
        score.clean_flagged += bool(spans)
        if spans:
            score.flagged_ids.append(record["id"])
        for span in spans:
            score.predicted[span.type] += 1
    return score


@dataclass(frozen=True)
class Throughput:
    """Messages per second on one core: CPU time (median pass) and wall clock."""

    cpu_rate: float
    cpu_mbps: float
    wall_rate: float


def throughput(messages: list[str], seconds: float = 2.0) -> Throughput:
    """Sanitize ``messages`` in passes for about ``seconds`` of CPU time.

    The headline figure is CPU time of this single-threaded process (the median
    pass), which other processes on a shared machine do not inflate; the wall-clock
    rate over all passes is reported beside it.
    """
    chars = sum(len(m) for m in messages)
    passes: list[float] = []
    wall_start, cpu_start = time.perf_counter(), time.process_time()
    while time.process_time() - cpu_start < seconds or len(passes) < 3:
        begin = time.process_time()
        for message in messages:
            sanitize(message)
        passes.append(time.process_time() - begin)
    wall = time.perf_counter() - wall_start
    per_pass = statistics.median(passes)
    return Throughput(
        len(messages) / per_pass,
        chars / per_pass / 1e6,
        len(messages) * len(passes) / wall,
    )


def bench_messages(labelled: list[dict], clean: list[dict]) -> list[str]:
    """Build a fixed set of 50-500 character chat messages from the corpora."""
    rng = random.Random(7)
    pool = [r["text"] for r in labelled + clean]
    messages = []
    for _ in range(400):
        target = rng.randint(50, 500)
        parts: list[str] = []
        while sum(len(p) + 1 for p in parts) < target:
            parts.append(rng.choice(pool))
        messages.append(" ".join(parts)[:target])
    return messages


def load_corpus(name: str) -> tuple[list[dict], list[dict]]:
    """Labelled and clean records of a named corpus ("original", "heldout", "all")."""
    labelled_paths, clean_paths = CORPORA[name]
    labelled = [r for path in labelled_paths for r in load(path)]
    return labelled, [r for path in clean_paths for r in load(path)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", choices=sorted(CORPORA), default="original")
    parser.add_argument("-v", action="store_true", help="list misses and flags")
    args = parser.parse_args()
    labelled, clean = load_corpus(args.corpus)
    print(f"corpus: {args.corpus} ({len(labelled)} labelled, {len(clean)} clean)")
    score = evaluate(labelled, clean)
    print(
        f"{'type':<12} {'gold':>5} {'found':>6} {'recall':>7} {'pred':>5} {'prec':>6}"
    )
    for kind in sorted(score.gold | score.predicted):
        print(
            f"{kind:<12} {score.gold[kind]:>5} {score.found[kind]:>6} "
            f"{score.recall(kind):>7.1%} {score.predicted[kind]:>5} "
            f"{score.precision(kind):>6.1%}"
        )
    print(
        f"{'overall':<12} {sum(score.gold.values()):>5} {sum(score.found.values()):>6} "
        f"{score.recall():>7.1%}"
    )
    print(
        f"clean messages flagged: {score.clean_flagged}/{score.clean_total} "
        f"= {score.fp_share():.1%}"
    )
    messages = bench_messages(labelled, clean)
    speed = throughput(messages)
    avg = sum(len(m) for m in messages) / len(messages)
    print(
        f"throughput: {speed.cpu_rate:,.0f} msg/s ({speed.cpu_mbps:.2f} MB/s) CPU time,"
        f" 1 core, avg {avg:.0f} chars; wall clock {speed.wall_rate:,.0f} msg/s"
    )
    if args.v:
        print("missed:", " ".join(score.missed_ids))
        print("flagged clean:", " ".join(score.flagged_ids))


if __name__ == "__main__":
    main()
