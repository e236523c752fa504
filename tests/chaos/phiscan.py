"""Scan every stored value, decrypted by the app itself, for PHI canaries.

``python -m tests.chaos.phiscan`` runs in a deployment's environment (its database
and its field keys): it reads every text, JSON and binary column of every model
through the ORM, so EncryptedTextField values are decrypted by the app's own code
and a canary the sanitizer let through into message text is found. It prints one
JSON line of counts per ``table.column`` (never a value), with the tables it could
not decrypt or read, and exits 0.
"""

from __future__ import annotations

import json
import sys
from typing import Any

SCANNED = (
    "TextField",
    "CharField",
    "JSONField",
    "BinaryField",
    "EncryptedTextField",
    "GenericIPAddressField",
)


def _scan_model(model: Any, hits: dict[str, int], totals: dict[str, int]) -> None:
    from django.db import DatabaseError

    from stepsync.crypto import FieldCryptoError
    from tests.phi_tripwire import find_canary

    fields = [f for f in model._meta.concrete_fields if type(f).__name__ in SCANNED]
    if not fields:
        return
    names = [f.attname for f in fields]
    table = model._meta.db_table
    rows = model._base_manager.values_list(*names).iterator(chunk_size=500)
    try:
        for row in rows:
            totals["rows"] += 1
            for name, value in zip(names, row, strict=True):
                if value is None:
                    continue
                if isinstance(value, bytes | memoryview):
                    value = bytes(value).decode("latin-1")
                text = value
                if find_canary(text if isinstance(text, str) else json.dumps(text)):
                    hits[f"{table}.{name}"] = hits.get(f"{table}.{name}", 0) + 1
    except FieldCryptoError:
        totals["undecryptable_tables"] += 1
    except DatabaseError:
        totals["unreadable_tables"] += 1


def main() -> int:
    import django

    django.setup()
    from django.apps import apps

    hits: dict[str, int] = {}
    totals = {"rows": 0, "undecryptable_tables": 0, "unreadable_tables": 0}
    for model in apps.get_models():
        if model._meta.managed and not model._meta.proxy:
            _scan_model(model, hits, totals)
    sys.stdout.write(json.dumps({**totals, "hits": hits}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
