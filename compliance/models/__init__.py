"""Compliance models: audit trail, incidents, retention runs."""

from compliance.models.audit import (
    AuditAction,
    AuditChainHead,
    AuditEvent,
    AuditImmutableError,
    AuditOutcome,
)
from compliance.models.incident import (
    ACTIVE_STATUSES,
    DataCategory,
    Incident,
    IncidentCategory,
    IncidentSequence,
    IncidentStatus,
    IncidentUpdate,
    Severity,
)
from compliance.models.retention import RetentionOutcome, RetentionRun

__all__ = [
    "ACTIVE_STATUSES",
    "AuditAction",
    "AuditChainHead",
    "AuditEvent",
    "AuditImmutableError",
    "AuditOutcome",
    "DataCategory",
    "Incident",
    "IncidentCategory",
    "IncidentSequence",
    "IncidentStatus",
    "IncidentUpdate",
    "RetentionOutcome",
    "RetentionRun",
    "Severity",
]
