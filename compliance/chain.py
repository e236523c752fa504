"""The audit hash chain: HMAC-SHA256 links, serialised appends, verification, heads.

Each row's MAC covers a canonical serialisation of all its fields (seq included) and
the previous row's MAC, keyed by AUDIT_HMAC_KEY, which lives outside the database.
Appends lock the single ``AuditChainHead`` row (``SELECT ... FOR UPDATE`` on
PostgreSQL; SQLite's IMMEDIATE transactions already serialise writers), so concurrent
writers cannot fork the chain. Exported heads (a JSON-lines file outside the database)
let verification detect a truncated tail: every exported (seq, MAC) must still be the
row at that seq. The chain's id is derived from the key, not stored, so a database
writer cannot rename the chain to make earlier exports look foreign. Pruning old links
(audit retention) lives in compliance/chain_prune.py.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from compliance.appendonly import HEAD_TABLE
from compliance.models import AuditAction, AuditChainHead, AuditEvent, AuditOutcome
from stepsync import secrets as secret_store
from stepsync.db import statements

logger = logging.getLogger(__name__)

GENESIS_MAC = "0" * 64
# How far from its stored seq a row's MAC is searched for, to tell "moved" from "edited".
REORDER_WINDOW = 64

EDITED = "edited"
DELETED = "deleted"
REORDERED = "reordered"
TRUNCATED = "truncated"
HEAD_MISMATCH = "head_mismatch"
HEAD_MISSING = "head_missing"
CHAIN_ID_LABEL = b"stepsync.audit.chain_id.v1"

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


def chain_id(key: bytes) -> str:
    """The chain's name in exported heads: derived from the key, so not forgeable."""
    return hmac.new(key, CHAIN_ID_LABEL, hashlib.sha256).hexdigest()[:32]


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


def _append_locked(key: bytes, seq: int, mac: str, **fields: Any) -> AuditEvent:
    """Insert the event after (seq, mac) and move the head; the head row is locked."""
    now = timezone.now()
    event = AuditEvent(seq=seq + 1, at=now, prev_mac=mac, **fields)
    row = {name: getattr(event, name) for name in FIELDS if name != "mac"}
    event.mac = compute_mac(key, row)
    statements.insert(event)  # AuditEvent.save's checks hold: new, with a MAC
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {HEAD_TABLE} SET seq = %s, mac = %s, updated_at = %s "  # noqa: S608 - constant table name
            "WHERE id = 1",
            [event.seq, event.mac, connection.ops.adapt_datetimefield_value(now)],
        )
    return event


def _locked_head(key: bytes) -> tuple[int, str]:
    """The head's (seq, MAC), its row locked until the transaction ends (one read;
    SQLite's IMMEDIATE transaction already holds the write lock)."""
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT seq, mac FROM {HEAD_TABLE} WHERE id = 1{lock}")  # noqa: S608 - constant table name
        row = cursor.fetchone()
    if row is None:
        head = head_for_update(key)
        return head.seq, head.mac
    return int(row[0]), str(row[1])


def head_for_update(key: bytes) -> AuditChainHead:
    """Lock the chain head row (call inside a transaction), creating it if missing.

    A row missing while events exist was deleted (the triggers refuse that, so
    someone removed them first): it is rebuilt from the last event, and an
    AUDIT_HEAD_REBUILT event naming that last seq is chained at once, so the loss
    stays on the record (and verification can place a cut the exports reveal).
    """
    head = AuditChainHead.objects.select_for_update().filter(pk=1).first()
    if head is not None:
        return head
    last = AuditEvent.objects.order_by("-seq").values("seq", "mac").first()
    _, created = AuditChainHead.objects.get_or_create(
        pk=1,
        defaults={
            "chain_id": chain_id(key),
            "seq": last["seq"] if last else 0,
            "mac": last["mac"] if last else GENESIS_MAC,
            "base_seq": 0,
            "base_mac": GENESIS_MAC,
        },
    )
    head = AuditChainHead.objects.select_for_update().get(pk=1)
    if created and last is not None:
        logger.error("audit.chain_head_missing last_seq=%d", last["seq"])
        event = _append_locked(
            key,
            head.seq,
            head.mac,
            actor_id=None,
            system_principal="audit_chain",
            action=AuditAction.AUDIT_HEAD_REBUILT,
            target_type="audit_chain",
            target_id="",
            outcome=AuditOutcome.FAILURE,
            client_ip=None,
            request_id="",
            details={"last_seq": int(last["seq"])},
        )
        head.seq, head.mac = event.seq, event.mac
    return head


def chain_append(**fields: Any) -> AuditEvent:
    """Append one event to the chain and return it (fields are already validated).

    Joins the caller's transaction when there is one, without a savepoint: the
    event commits or rolls back with the action it records (an error here rolls
    the caller's transaction back). Alone, it runs in a transaction of its own.
    On PostgreSQL the head row stays locked until that transaction ends, so call
    this last in a transaction.
    """
    key = audit_key()
    with transaction.atomic(savepoint=False):
        seq, mac = _locked_head(key)
        return _append_locked(key, seq, mac, **fields)


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


def _expected_macs(heads: list[ExportedHead], *, name: str) -> dict[int, set[str]]:
    """Exported MACs by seq, for this chain only (other keys' exports are foreign)."""
    expected: dict[int, set[str]] = {}
    for head in heads:
        if hmac.compare_digest(head.chain_id, name):
            expected.setdefault(head.seq, set()).add(head.mac)
    return expected


def _matches(expected: dict[int, set[str]], seq: int, mac: str) -> bool:
    return seq not in expected or expected[seq] == {mac}


@dataclass
class _Walk:
    """Where a verification walk got to."""

    seq: int
    mac: str
    checked: int = 0
    first_seq: int | None = None
    broken: ChainBreak | None = None
    confirmed: int = 0  # the last seq an exported head vouched for


def _walk(key: bytes, walk: _Walk, expected: dict[int, set[str]]) -> _Walk:
    """Check each row's seq, MAC, link and any exported MAC; stop at the first break."""
    for row in _rows():
        seq = int(row["seq"])
        walk.first_seq = seq if walk.first_seq is None else walk.first_seq
        if seq != walk.seq + 1:
            walk.broken = ChainBreak(walk.seq + 1, DELETED)
        elif not hmac.compare_digest(compute_mac(key, row), row["mac"]):
            walk.broken = ChainBreak(seq, _classify_bad_mac(key, row))
        elif row["prev_mac"] != walk.mac:
            walk.broken = ChainBreak(seq, _unlinked_kind(row))
        elif not _matches(expected, seq, row["mac"]):
            walk.broken = _rebuilt_before(ChainBreak(seq, HEAD_MISMATCH), walk)
        if walk.broken is not None:
            return walk
        walk.checked += 1
        walk.seq, walk.mac = seq, row["mac"]
        walk.confirmed = seq if seq in expected else walk.confirmed
    return walk


def chain_verify(*, head_path: Path | None = None) -> ChainReport:
    """Walk the chain in seq order and report the first broken link, if any.

    Kinds: ``edited`` (a row's content no longer matches its MAC), ``deleted`` (a seq
    is missing, or a row's predecessor is gone), ``reordered`` (a row sits at another
    position than the one it was written at), ``truncated`` (the chain ends before an
    exported or the recorded head), ``head_mismatch`` (the row at an exported head's
    seq is not the one exported, or the head row disagrees with the chain),
    ``head_missing`` (events exist but the head row is gone). Every exported head of
    this chain is checked, whatever the head row says. Reads only ids and MACs.
    """
    from compliance.appendonly import triggers_present

    key = audit_key()
    head = AuditChainHead.objects.filter(pk=1).first()
    walk = _Walk(
        seq=head.base_seq if head else 0, mac=head.base_mac if head else GENESIS_MAC
    )
    expected = _expected_macs(exported_heads(head_path), name=chain_id(key))
    if walk.seq > 0 and not _matches(expected, walk.seq, walk.mac):
        walk.broken = ChainBreak(walk.seq, HEAD_MISMATCH)
    else:
        walk = _walk(key, walk, expected)
    if walk.broken is None:
        walk.broken = _tail_check(key, walk, head, max(expected, default=0))
    return ChainReport(
        checked=walk.checked,
        first_seq=walk.first_seq,
        last_seq=walk.seq if walk.checked else None,
        broken=walk.broken,
        exported_seq=max(expected) if expected else None,
        triggers_ok=triggers_present(),
    )


def _rebuilt_before(found: ChainBreak, walk: _Walk) -> ChainBreak:
    """An exported head proves the tail was replaced; a head rebuilt after the last
    vouched-for seq and before the break says where it was cut."""
    rebuilt = (
        AuditEvent.objects.filter(
            action=AuditAction.AUDIT_HEAD_REBUILT,
            seq__gt=walk.confirmed,
            seq__lte=found.seq,
        )
        .order_by("seq")
        .values_list("seq", flat=True)
        .first()
    )
    return found if rebuilt is None else ChainBreak(int(rebuilt), TRUNCATED)


def _tail_check(
    key: bytes, walk: _Walk, head: AuditChainHead | None, exported_seq: int
) -> ChainBreak | None:
    last_seq, last_mac = walk.seq, walk.mac
    if exported_seq > last_seq:
        return _rebuilt_before(ChainBreak(last_seq + 1, TRUNCATED), walk)
    if head is None:
        missing = AuditEvent.objects.exists()
        return ChainBreak(last_seq + 1, HEAD_MISSING) if missing else None
    if head.seq > last_seq:
        return ChainBreak(last_seq + 1, TRUNCATED)
    if head.seq < last_seq:
        return ChainBreak(head.seq + 1, HEAD_MISMATCH)
    if not hmac.compare_digest(head.mac, last_mac):
        return ChainBreak(head.seq, HEAD_MISMATCH)
    if not hmac.compare_digest(head.chain_id, chain_id(key)):
        return ChainBreak(head.seq, HEAD_MISMATCH)
    return None


def head_export(*, path: Path | None = None) -> ExportedHead:
    """Append the current chain head to the export file (created 0600) and fsync.

    Not audited by itself: scheduled and manual exports go through
    compliance.services.audit_head_export, which records the export first.
    """
    key = audit_key()
    head = AuditChainHead.objects.filter(pk=1).first()
    if head is None:
        with transaction.atomic():
            head = head_for_update(key)
    exported = ExportedHead(chain_id(key), head.seq, head.mac)
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
