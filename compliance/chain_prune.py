"""Audit retention on the chain: removing the oldest links, keeping it verifiable.

Used only by compliance.services.audit_prune (``manage.py prune_audit_trail``), never
by the 90-day purge. The append-only triggers allow these deletes, and the head's
base to move, only inside the prune window of compliance/appendonly.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction

from compliance.appendonly import audit_prune_window
from compliance.chain import audit_key, head_for_update
from compliance.models import AuditChainHead, AuditEvent


@dataclass(frozen=True)
class PruneResult:
    """What a prune removed (or, for a dry run, would remove), through which seq."""

    deleted: int
    through_seq: int


def chain_prune(*, before: datetime, dry_run: bool = False) -> PruneResult:
    """Delete the oldest events dated before ``before`` (audit retention, by hand).

    Only a contiguous run from the start of the chain is removed, so the chain stays
    verifiable: the last removed link becomes the head row's base. Rows newer than
    ``before`` are never removed, even if the clock once ran backwards.
    """
    with transaction.atomic():
        head = head_for_update(audit_key())
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
        # The head triggers let the base move only inside the prune window.
        with audit_prune_window(before=before), connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {AuditEvent._meta.db_table} WHERE seq <= %s",  # noqa: S608
                [last["seq"]],
            )
            AuditChainHead.objects.filter(pk=1).update(
                base_seq=last["seq"], base_mac=last["mac"]
            )
    return PruneResult(deleted=count, through_seq=last["seq"])
