"""Build tests/data/phi_heldout.jsonl from its marked-up source (offsets by script).

Run: .venv/bin/python bench/build_heldout.py
"""

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
SOURCE = DATA / "phi_heldout.src.txt"
TARGET = DATA / "phi_heldout.jsonl"
MARK = re.compile(r"\[\[([A-Z_0-9]+)\|(.*?)\]\]")
TYPES = {
    "NAME", "EMAIL", "PHONE", "SSN", "DATE", "ADDRESS", "ZIP", "MRN", "LICENSE",
    "VEHICLE", "DEVICE_ID", "URL", "IP", "CREDIT_CARD", "AGE_OVER_89",
}  # fmt: skip


def luhn_ok(number: str) -> bool:
    """True when the digits of number pass the Luhn check."""
    digits = [int(c) for c in number if c.isdigit()][::-1]
    total = sum(d if i % 2 == 0 else (d * 2 - 9 if d > 4 else d * 2)
                for i, d in enumerate(digits))  # fmt: skip
    return total % 10 == 0


def parse(line: str) -> tuple[str, list[dict]]:
    """Turn one marked-up line into (text, entities with offsets)."""
    line = line.replace("\\n", "\n")
    text, entities, pos = "", [], 0
    for match in MARK.finditer(line):
        text += line[pos : match.start()]
        kind, value = match.group(1), match.group(2)
        if kind not in TYPES:
            raise ValueError(f"unknown type {kind}")
        if kind == "CREDIT_CARD" and not luhn_ok(value):
            raise ValueError(f"card fails Luhn: {value}")
        entities.append(
            {"start": len(text), "end": len(text) + len(value), "type": kind}
        )
        text += value
        pos = match.end()
    text += line[pos:]
    if "[[" in text or "]]" in text:
        raise ValueError(f"unbalanced mark-up: {line[:40]}")
    return text, entities


def main() -> int:
    records = []
    for raw in SOURCE.read_text(encoding="utf-8").splitlines():
        if not raw.strip() or raw.startswith("#"):
            continue
        text, entities = parse(raw)
        records.append({"id": f"held-{len(records) + 1:03d}", "text": text,
                        "entities": entities})  # fmt: skip
    TARGET.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
        encoding="utf-8",
    )
    print(f"{len(records)} messages, {sum(len(r['entities']) for r in records)} "
          f"entities -> {TARGET.relative_to(ROOT)}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
