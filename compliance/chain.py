"""The audit hash chain: HMAC-SHA256 links, serialised appends, verification, heads.

Each row's MAC covers a canonical serialisation of all its fields (seq included) and
the previous row's MAC, keyed by AUDIT_HMAC_KEY, which lives outside the database.
Appends lock the single ``AuditChainHead`` row (``SELECT ... FOR UPDATE`` on
PostgreSQL; SQLite's IMMEDIATE transactions already serialise writers), so concurrent
writers cannot fork the chain. Exported heads (a JSON-lines file outside the database)
let verification detect a truncated tail.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import os
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from compliance.models import AuditChainHead, AuditEvent
from stepsync import secrets as secret_store

GENESIS_MAC = "0" * 64
# How far from its stored seq a row's MAC is searched for, to tell "moved" from "edited".
REORDER_WINDOW = 64

EDITED = "edited"
DELETED = "deleted"
REORDERED = "reordered"
TRUNCATED = "truncated"
HEAD_MISMATCH = "head_mismatch"

FIELDS = (
    "seq",
    "at",
    "actor_id",
    "system_principal",
    "action",
    "target_type",
    "target_id",
    "outcome",
    "client_ip",
    "request_id",
    "details",
    "prev_mac",
    "mac",
)


def audit_key() -> bytes:
    """The chain key (raises SecretError, naming the variable, when absent)."""
    return bytes.fromhex(secret_store.read_secret(secret_store.AUDIT_HMAC_KEY))


def _timestamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _ip(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return value


def canonical(row: Mapping[str, Any], *, seq: int | None = None) -> bytes:
    """The bytes a row's MAC covers: every field but ``mac``, in a fixed JSON form."""
    document = {
        "v": 1,
        "seq": int(row["seq"] if seq is None else seq),
        "at": _timestamp(row["at"]),
        "actor": row["actor_id"],
        "principal": row["system_principal"],
        "action": row["action"],
        "target_type": row["target_type"],
        "target_id": row["target_id"],
        "outcome": row["outcome"],
        "ip": _ip(row["client_ip"]),
        "request_id": row["request_id"],
        "details": row["details"],
        "prev": row["prev_mac"],
    }
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=True
    ).encode("ascii")


def compute_mac(key: bytes, row: Mapping[str, Any], *, seq: int | None = None) -> str:
    """HMAC-SHA256 of the canonical form of ``row`` (optionally as if at ``seq``)."""
    return hmac.new(key, canonical(row, seq=seq), hashlib.sha256).hexdigest()


def _head_for_update() -> AuditChainHead:
    """Lock the chain head row, creating it from the last event if it is missing."""
    head = AuditChainHead.objects.select_for_update().filter(pk=1).first()
    if head is not None:
        return head
    last = AuditEvent.objects.order_by("-seq").values("seq", "mac").first()
    AuditChainHead.objects.get_or_create(
        pk=1,
        defaults={
            "chain_id": secrets.token_hex(16),
            "seq": last["seq"] if last else 0,
            "mac": last["mac"] if last else GENESIS_MAC,
            "base_seq": 0,
            "base_mac": GENESIS_MAC,
        },
    )
    return AuditChainHead.objects.select_for_update().get(pk=1)


def chain_append(**fields: Any) -> AuditEvent:
    """Append one event to the chain and return it (fields are already validated)."""
    key = audit_key()
    with transaction.atomic():
        head = _head_for_update()
        now = timezone.now()
        event = AuditEvent(seq=head.seq + 1, at=now, prev_mac=head.mac, **fields)
        row = {name: getattr(event, name) for name in FIELDS if name != "mac"}
        event.mac = compute_mac(key, row)
        event.save()
        AuditChainHead.objects.filter(pk=1).update(
            seq=event.seq, mac=event.mac, updated_at=now
        )
    return event


@dataclass(frozen=True)
class ChainBreak:
    """The first broken link: the sequence number and what kind of break it is."""

    seq: int
    kind: str


@dataclass(frozen=True)
class ChainReport:
    """Result of a verification run; ``ok`` only when nothing is broken."""

    checked: int
    first_seq: int | None
    last_seq: int | None
    broken: ChainBreak | None
    exported_seq: int | None
    triggers_ok: bool

    @property
    def ok(self) -> bool:
        return self.broken is None and self.triggers_ok


@dataclass(frozen=True)
class ExportedHead:
    chain_id: str
    seq: int
    mac: str


def _rows() -> Iterator[dict[str, Any]]:
    queryset = AuditEvent.objects.order_by("seq").values(*FIELDS)
    return queryset.iterator(chunk_size=2000)


def _classify_bad_mac(key: bytes, row: Mapping[str, Any]) -> str:
    """A row whose MAC fails at its seq: moved (valid elsewhere), or edited."""
    seq = int(row["seq"])
    for candidate in range(max(1, seq - REORDER_WINDOW), seq + REORDER_WINDOW + 1):
        if candidate != seq and hmac.compare_digest(
            compute_mac(key, row, seq=candidate), row["mac"]
        ):
            predecessor = AuditEvent.objects.filter(mac=row["prev_mac"]).exists()
            return REORDERED if predecessor else DELETED
        continue
    return EDITED


def _unlinked_kind(row: Mapping[str, Any]) -> str:
    """An intact row whose predecessor is not the row before it."""
    if AuditEvent.objects.filter(mac=row["prev_mac"]).exists():
        return REORDERED
    return DELETED


def exported_heads(path: Path | None = None) -> list[ExportedHead]:
    """Every head in the export file (oldest first); unreadable lines are skipped."""
    target = Path(path or settings.AUDIT_HEAD_EXPORT_PATH)
    if not target.is_file():
        return []
    heads = []
    for line in target.read_text(encoding="ascii", errors="replace").splitlines():
        try:
            item = json.loads(line)
            heads.append(
                ExportedHead(str(item["chain_id"]), int(item["seq"]), str(item["mac"]))
            )
        except (ValueError, KeyError, TypeError):
            continue
    return heads


def chain_verify(*, head_path: Path | None = None) -> ChainReport:
    """Walk the chain in seq order and report the first broken link, if any.

    Kinds: ``edited`` (a row's content no longer matches its MAC), ``deleted`` (a seq
    is missing, or a row's predecessor is gone), ``reordered`` (a row sits at another
    position than the one it was written at), ``truncated`` (the chain ends before the
    last exported or recorded head), ``head_mismatch`` (the row at the exported head's
    seq is not the one exported). Reads only ids and MACs; never prints row content.
    """
    from compliance.appendonly import triggers_present

    key = audit_key()
    head = AuditChainHead.objects.filter(pk=1).first()
    prev_seq = head.base_seq if head else 0
    prev_mac = head.base_mac if head else GENESIS_MAC
    exported = [
        h for h in exported_heads(head_path) if head and h.chain_id == head.chain_id
    ]
    latest = exported[-1] if exported else None
    checked, first_seq, broken, mac_at_export = 0, None, None, None
    for row in _rows():
        seq = int(row["seq"])
        first_seq = seq if first_seq is None else first_seq
        if seq != prev_seq + 1:
            broken = ChainBreak(prev_seq + 1, DELETED)
            break
        if not hmac.compare_digest(compute_mac(key, row), row["mac"]):
            broken = ChainBreak(seq, _classify_bad_mac(key, row))
            break
        if row["prev_mac"] != prev_mac:
            broken = ChainBreak(seq, _unlinked_kind(row))
            break
        if latest is not None and seq == latest.seq:
            mac_at_export = row["mac"]
        checked += 1
        prev_seq, prev_mac = seq, row["mac"]
    if broken is None:
        broken = _tail_check(prev_seq, head, latest, mac_at_export)
    return ChainReport(
        checked=checked,
        first_seq=first_seq,
        last_seq=prev_seq if checked else None,
        broken=broken,
        exported_seq=latest.seq if latest else None,
        triggers_ok=triggers_present(),
    )


def _tail_check(
    last_seq: int,
    head: AuditChainHead | None,
    latest: ExportedHead | None,
    mac_at_export: str | None,
) -> ChainBreak | None:
    if latest is not None and latest.seq > last_seq:
        return ChainBreak(last_seq + 1, TRUNCATED)
    if head is not None and head.seq > last_seq:
        return ChainBreak(last_seq + 1, TRUNCATED)
    if (
        latest is not None
        and mac_at_export is not None
        and not hmac.compare_digest(mac_at_export, latest.mac)
    ):
        return ChainBreak(latest.seq, HEAD_MISMATCH)
    return None


def head_export(*, path: Path | None = None) -> ExportedHead:
    """Append the current chain head to the export file (created 0600) and fsync."""
    head = AuditChainHead.objects.filter(pk=1).first()
    if head is None:
        with transaction.atomic():
            head = _head_for_update()
    exported = ExportedHead(head.chain_id, head.seq, head.mac)
    target = Path(path or settings.AUDIT_HEAD_EXPORT_PATH)
    target.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(
        {
            "chain_id": exported.chain_id,
            "seq": exported.seq,
            "mac": exported.mac,
            "exported_at": _timestamp(timezone.now()),
        },
        sort_keys=True,
    )
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="ascii") as handle:
        handle.write(line + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return exported


@dataclass(frozen=True)
class PruneResult:
    deleted: int
    through_seq: int


def chain_prune(*, before: datetime, dry_run: bool = False) -> PruneResult:
    """Delete the oldest events dated before ``before`` (audit retention, by hand).

    Only a contiguous run from the start of the chain is removed, so the chain stays
    verifiable: the last removed link becomes the head row's base. Rows newer than
    ``before`` are never removed, even if the clock once ran backwards.
    """
    from django.db import connection

    from compliance.appendonly import audit_prune_window

    with transaction.atomic():
        head = _head_for_update()
        first_kept = AuditEvent.objects.filter(at__gte=before).order_by("seq").first()
        old = AuditEvent.objects.filter(seq__gt=head.base_seq)
        if first_kept is not None:
            old = old.filter(seq__lt=first_kept.seq)
        last = old.order_by("-seq").values("seq", "mac").first()
        if last is None:
            return PruneResult(deleted=0, through_seq=head.base_seq)
        count = old.count()
        if dry_run:
            return PruneResult(deleted=count, through_seq=last["seq"])
        with audit_prune_window(before=before), connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {AuditEvent._meta.db_table} WHERE seq <= %s",  # noqa: S608
                [last["seq"]],
            )
        AuditChainHead.objects.filter(pk=1).update(
            base_seq=last["seq"], base_mac=last["mac"]
        )
    return PruneResult(deleted=count, through_seq=last["seq"])
