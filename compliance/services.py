"""Compliance use cases every app calls: audit_record, pseudonym, content access, login.

Audit rows hold who, what, which object, when, from where and the outcome; details are
ids, types and counts only, and ``details_validate`` refuses anything that looks like
free text. Nothing here logs or returns user-supplied text.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth import authenticate, user_logged_in
from django.db.models import Max, QuerySet
from django.http import HttpRequest
from django.views.decorators.debug import sensitive_variables

from compliance.chain import (
    ChainReport,
    ExportedHead,
    audit_key,
    chain_append,
    chain_verify,
    head_export,
)
from compliance.chain_prune import PruneResult, chain_prune
from compliance.exceptions import AuditDetailsRejected, LockedOut
from compliance.models import AuditAction, AuditEvent, AuditOutcome
from compliance.selectors import audit_csv_lines
from stepsync.net import client_ip
from stepsync.request_context import request_id_var

if TYPE_CHECKING:
    from accounts.models import User

Details = Mapping[str, Any]

MAX_TEXT = 64
MAX_ITEMS = 64
KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,47}")
CODE = re.compile(r"[A-Za-z0-9_.:/+=-]{0,64}")
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.:-]{0,63}")
OUTCOME = re.compile(r"[a-z_]{1,16}")
REQUEST_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
# Pseudonyms, request ids, MACs: hex tokens holding at least one letter. A run of
# digits alone (a phone, card or record number) never passes as a token.
HEX_TOKEN = re.compile(r"(?=[0-9a-f]*[a-f])[0-9a-f]{16,64}")
# Shapes of identifiers that must never reach an audit row even as "codes".
SUSPECT = (
    re.compile(r"\d{3}-\d{2}-\d{4}"),  # SSN
    re.compile(r"\d{4}-\d{2}-\d{2}"),  # a date (of birth)
    re.compile(r"\d{7,}"),  # phone, card, record numbers
)
CONTENT_PERMISSION = "compliance.view_conversation_content"
# Built once: AuditAction.values makes a new list on every access.
ACTIONS = frozenset(AuditAction.values)


def _check_text(value: str, *, what: str) -> str:
    if HEX_TOKEN.fullmatch(value):
        return value
    if len(value) > MAX_TEXT or not CODE.fullmatch(value):
        raise AuditDetailsRejected(f"{what} is not a short code")
    if any(pattern.search(value) for pattern in SUSPECT):
        raise AuditDetailsRejected(f"{what} looks like an identifier")
    return value


def _check_value(value: Any, *, what: str, nested: bool = False) -> Any:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        return _check_text(value, what=what)
    if isinstance(value, list | tuple) and not nested:
        if len(value) > MAX_ITEMS:
            raise AuditDetailsRejected(f"{what} has too many items")
        return [_check_value(item, what=what, nested=True) for item in value]
    if isinstance(value, Mapping) and not nested:
        return _check_mapping(value, nested=True, what=what)
    raise AuditDetailsRejected(f"{what} has an unsupported type")


def _check_mapping(details: Details, *, nested: bool = False, what: str = "") -> Any:
    if len(details) > MAX_ITEMS:
        raise AuditDetailsRejected("too many keys")
    clean: dict[str, Any] = {}
    for key, value in details.items():
        if not isinstance(key, str) or not KEY.fullmatch(key):
            raise AuditDetailsRejected("a key is not an identifier")
        label = f"{what}.{key}" if what else key
        if nested and not (value is None or isinstance(value, bool | int)):
            raise AuditDetailsRejected(f"{label} must be a count")
        clean[key] = _check_value(value, what=label)
    return clean


def details_validate(details: Details | None) -> dict[str, Any]:
    """Return ``details`` as plain JSON data, or raise AuditDetailsRejected.

    Allowed: ints, bools, None, short codes (no whitespace, at most 64 characters,
    no SSN/date/long-number shapes), lists of those, and one level of ``{name: count}``.
    Floats are refused because their JSON form is not stable across databases.
    """
    if details is None:
        return {}
    if not isinstance(details, Mapping):
        raise AuditDetailsRejected("details must be a mapping")
    return dict(_check_mapping(details))


def _request_id(request: HttpRequest | None) -> str:
    value = getattr(request, "request_id", "") if request is not None else ""
    value = value or request_id_var.get()
    return value if REQUEST_ID.fullmatch(value or "") and value != "-" else ""


def _field(value: str | int, *, what: str, pattern: re.Pattern[str]) -> str:
    text = str(value)
    if text and not pattern.fullmatch(text):
        raise AuditDetailsRejected(f"{what} is not a short code")
    if text and what == "target_id":
        _check_text(text, what=what)
    return text


def audit_record(
    *,
    action: AuditAction | str,
    actor: User | None = None,
    system_principal: str = "",
    target_type: str = "",
    target_id: str | int = "",
    outcome: str = AuditOutcome.SUCCESS,
    details: Details | None = None,
    request: HttpRequest | None = None,
) -> AuditEvent:
    """Append one audit event to the hash chain and return it.

    ``actor`` is the user who acted (anonymous users count as none); use
    ``system_principal`` (e.g. "retention", "axes") for jobs. ``request`` supplies the
    client IP (trusted proxy hops only) and the request id. Raises ValueError for an
    unknown action and AuditDetailsRejected for details that are not ids, types or
    counts. Safe inside or outside a transaction: inside one, the row joins it (no
    savepoint), so it commits or rolls back with the action it records, and an
    error here rolls that transaction back; on PostgreSQL the chain lock is held
    until the outer commit, so call this at the end of a transaction, not at its
    start.
    """
    if str(action) not in ACTIONS:
        raise ValueError("unknown audit action")
    if not OUTCOME.fullmatch(str(outcome)):
        raise AuditDetailsRejected("outcome is not a code")
    actor_id = None
    if actor is not None and getattr(actor, "is_authenticated", False):
        actor_id = actor.pk
    return chain_append(
        actor_id=actor_id,
        system_principal=_field(system_principal, what="principal", pattern=NAME),
        action=str(action),
        target_type=_field(target_type, what="target_type", pattern=NAME),
        target_id=_field(target_id, what="target_id", pattern=CODE),
        outcome=str(outcome),
        client_ip=client_ip(request) if request is not None else None,
        request_id=_request_id(request),
        details=details_validate(details),
    )


@sensitive_variables("value")
def pseudonym(value: str) -> str:
    """A keyed HMAC of an identifier (32 hex characters) for correlating events.

    The same value always gives the same pseudonym; it cannot be reversed without
    AUDIT_HMAC_KEY. Normalise first (e.g. lower-case usernames) where that matters.
    """
    subkey = hmac.new(audit_key(), b"stepsync.pseudonym.v1", hashlib.sha256).digest()
    return hmac.new(subkey, value.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def content_access_check(
    *, user: User, conversation_id: int | str, request: HttpRequest | None
) -> bool:
    """May this staff member see the conversation's content? Audited either way.

    True only for an active staff user holding ``compliance.view_conversation_content``
    (granted explicitly; superusers hold every permission). A grant is audited as
    STAFF_CONTENT_VIEW, a refusal as ACCESS_DENIED.
    """
    allowed = bool(
        user.is_active and user.is_staff and user.has_perm(CONTENT_PERMISSION)
    )
    audit_record(
        action=AuditAction.STAFF_CONTENT_VIEW if allowed else AuditAction.ACCESS_DENIED,
        actor=user,
        target_type="conversation",
        target_id=conversation_id,
        outcome=AuditOutcome.SUCCESS if allowed else AuditOutcome.DENIED,
        details={"permission": "view_conversation_content"},
        request=request,
    )
    return allowed


@sensitive_variables("password", "username")
def login_attempt(*, request: HttpRequest, username: str, password: str) -> User | None:
    """Check credentials through Django's backends, django-axes first.

    Returns the user, or None for wrong credentials (counted by axes and audited as
    LOGIN_FAILED). Raises LockedOut when axes refuses the attempt. A success fires
    ``user_logged_in`` (for API token logins too) so that axes resets the counter and
    the login is audited. Pass the DRF request or the Django request; either works.
    """
    http_request: HttpRequest = getattr(request, "_request", request)
    user = authenticate(request=http_request, username=username, password=password)
    if user is None:
        if getattr(http_request, "axes_locked_out", False):
            raise LockedOut()
        return None
    user_logged_in.send(sender=user.__class__, request=http_request, user=user)
    return user


def audit_export_csv(
    *, queryset: QuerySet[AuditEvent], actor: User, request: HttpRequest | None
) -> Iterator[str]:
    """Audit an export (AUDIT_EXPORT with the row count), then return its CSV lines.

    The export is the rows present when it was asked for: the queryset is pinned to
    the seq reached before the export's own event is written, so the audited count
    and the file always agree (the CSV streams after this returns).
    """
    last = AuditEvent.objects.aggregate(last=Max("seq"))["last"] or 0
    queryset = queryset.filter(seq__lte=last)
    rows = queryset.count()
    audit_record(
        action=AuditAction.AUDIT_EXPORT,
        actor=actor,
        target_type="audit_event",
        details={"rows": rows, "format": "csv"},
        request=request,
    )
    return audit_csv_lines(queryset)


def audit_chain_verify(
    *,
    actor: User | None = None,
    system_principal: str = "",
    request: HttpRequest | None = None,
) -> ChainReport:
    """Verify the chain (see chain.chain_verify) and audit the run as AUDIT_VERIFY."""
    report = chain_verify()
    details: dict[str, Any] = {
        "checked": report.checked,
        "triggers": report.triggers_ok,
    }
    if report.broken is not None:
        details.update(break_seq=report.broken.seq, kind=report.broken.kind)
    audit_record(
        action=AuditAction.AUDIT_VERIFY,
        actor=actor,
        system_principal=system_principal,
        target_type="audit_chain",
        outcome=AuditOutcome.SUCCESS if report.ok else AuditOutcome.FAILURE,
        details=details,
        request=request,
    )
    return report


def audit_head_export(*, system_principal: str = "export_audit_head") -> ExportedHead:
    """Audit the export (AUDIT_HEAD_EXPORT), then append the head, which includes it.

    The one entry point for exporting the head: the command and scheduled jobs
    (pass e.g. ``system_principal="job:audit_head_export"``) both call it.
    """
    audit_record(
        action=AuditAction.AUDIT_HEAD_EXPORT,
        system_principal=system_principal,
        target_type="audit_chain",
    )
    return head_export()


def audit_retention_cutoff(*, now: datetime) -> datetime:
    """Audit events older than this may be disposed of (AUDIT_RETENTION_YEARS)."""
    years = int(settings.AUDIT_RETENTION_YEARS)
    try:
        return now.replace(year=now.year - years)
    except ValueError:  # 29 February in a year that has none
        return now.replace(year=now.year - years, day=28)


def audit_prune(*, now: datetime, dry_run: bool = False) -> PruneResult:
    """Dispose of audit events older than AUDIT_RETENTION_YEARS (see chain_prune).

    Never part of the 90-day purge: an operator runs ``prune_audit_trail`` on purpose.
    The run itself is audited as RETENTION_RUN with counts.
    """
    years = int(settings.AUDIT_RETENTION_YEARS)
    result = chain_prune(before=audit_retention_cutoff(now=now), dry_run=dry_run)
    audit_record(
        action=AuditAction.RETENTION_RUN,
        system_principal="prune_audit_trail",
        target_type="audit_event",
        details={
            "dry_run": dry_run,
            "deleted": result.deleted,
            "through_seq": result.through_seq,
            "years": years,
        },
    )
    return result
