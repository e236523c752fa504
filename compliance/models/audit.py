"""The audit trail: append-only, hash-chained events (ids, types and counts only)."""

from __future__ import annotations

from typing import Any, NoReturn

from django.conf import settings
from django.db import models
from django.utils import timezone


class AuditAction(models.TextChoices):
    USER_SIGNUP = "user_signup", "User sign-up"
    LOGIN = "login", "Login"
    LOGIN_FAILED = "login_failed", "Failed login"
    LOCKOUT = "lockout", "Lockout"
    UNLOCK = "unlock", "Unlock"
    LOGOUT = "logout", "Logout"
    PASSWORD_CHANGE = "password_change", "Password change"
    ACCOUNT_DEACTIVATED = "account_deactivated", "Account deactivated"
    SESSION_EXPIRED = "session_expired", "Session expired"
    CONVERSATION_CREATE = "conversation_create", "Conversation created"
    CONVERSATION_VIEW = "conversation_view", "Conversation viewed"
    CONVERSATION_RENAME = "conversation_rename", "Conversation renamed"
    CONVERSATION_DELETE = "conversation_delete", "Conversation deleted"
    CONVERSATION_EXPORT = "conversation_export", "Conversation exported"
    CONVERSATION_CLOSE = "conversation_close", "Conversation closed"
    MESSAGE_SENT = "message_sent", "Message sent"
    MESSAGE_BLOCKED = "message_blocked", "Message blocked"
    ACCESS_DENIED = "access_denied", "Access denied"
    STAFF_CONTENT_VIEW = "staff_content_view", "Staff viewed conversation content"
    AUDIT_EXPORT = "audit_export", "Audit trail exported"
    AUDIT_VERIFY = "audit_verify", "Audit chain verified"
    AUDIT_HEAD_EXPORT = "audit_head_export", "Audit chain head exported"
    AUDIT_HEAD_REBUILT = "audit_head_rebuilt", "Audit chain head found missing"
    RETENTION_RUN = "retention_run", "Retention run"
    LEGAL_HOLD_CHANGE = "legal_hold_change", "Legal hold changed"
    INCIDENT_CREATE = "incident_create", "Incident created"
    INCIDENT_UPDATE = "incident_update", "Incident updated"
    INCIDENT_REPORT_EXPORT = "incident_report_export", "Incident report downloaded"
    BREAKER_ACTION = "breaker_action", "Circuit breaker action"
    BREAKER_TRANSITION = "breaker_transition", "Circuit breaker transition"
    KEY_ROTATION = "key_rotation", "Key rotation"
    BACKUP = "backup", "Backup"
    RESTORE = "restore", "Restore"
    ALERT_FIRED = "alert_fired", "Alert fired"
    ALERT_RESOLVED = "alert_resolved", "Alert resolved"
    LLM_CREDENTIAL_ERROR = "llm_credential_error", "LLM credential error"
    MFA_ENROLL = "mfa_enroll", "MFA enrolled"
    MFA_VERIFY_FAILED = "mfa_verify_failed", "MFA verification failed"
    MFA_RECOVERY_CODE_USED = "mfa_recovery_code_used", "MFA recovery code used"
    JOB_RUN = "job_run", "Job run"


class AuditOutcome(models.TextChoices):
    SUCCESS = "success", "Success"
    FAILURE = "failure", "Failure"
    DENIED = "denied", "Denied"
    ERROR = "error", "Error"


class AuditImmutableError(Exception):
    """Audit rows are append-only: they cannot be changed or deleted."""

    def __init__(self) -> None:
        super().__init__("audit events are append-only")


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    """Bulk changes are refused; the database triggers refuse them too."""

    def update(self, **kwargs: Any) -> NoReturn:
        raise AuditImmutableError()

    def delete(self) -> NoReturn:
        raise AuditImmutableError()

    def bulk_update(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AuditImmutableError()

    def update_or_create(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AuditImmutableError()


class AuditEvent(models.Model):
    """One audited action. Written only by compliance.chain.chain_append."""

    seq = models.PositiveBigIntegerField(unique=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)
    # No database constraint: a user's deletion must not touch (update) audit rows.
    # No index of its own: audit_actor_at (actor, at) serves lookups by actor.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    system_principal = models.CharField(max_length=64, blank=True, default="")
    action = models.CharField(max_length=40, choices=AuditAction.choices, db_index=True)
    target_type = models.CharField(max_length=64, blank=True, default="")
    target_id = models.CharField(max_length=64, blank=True, default="", db_index=True)
    # A short code: AuditOutcome's values, or another app's (e.g. "refused").
    outcome = models.CharField(max_length=16, default=AuditOutcome.SUCCESS)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True, default="", db_index=True)
    details = models.JSONField(default=dict, blank=True)
    prev_mac = models.CharField(max_length=64)
    mac = models.CharField(max_length=64, unique=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-seq"]
        # Only "view" exists: nobody, superusers included, can be granted change/delete.
        default_permissions = ("view",)
        # Conversation permissions live here, with the audit that guards them, so
        # that they are granted per person and never by the officers' view grant.
        permissions = [
            ("view_conversation_content", "Can view conversation content"),
            ("set_legal_hold", "Can place or release legal holds on conversations"),
        ]
        indexes = [models.Index(fields=["actor", "at"], name="audit_actor_at")]

    def __str__(self) -> str:
        return f"Audit event #{self.seq}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding or not self.mac:
            raise AuditImmutableError()
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AuditImmutableError()


class AuditChainHead(models.Model):
    """The single row holding the chain's last seq and MAC; appends lock it.

    ``chain_id`` is derived from AUDIT_HMAC_KEY (compliance.chain.chain_id) and only
    shown here: verification recomputes it. ``base_seq``/``base_mac`` are the last
    link removed by audit retention (so a pruned start is not read as deletion).
    Triggers (migration 0007) refuse deleting the row, renaming the chain, lowering
    or rewriting the head, and moving the base outside the prune window.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    chain_id = models.CharField(max_length=32)
    seq = models.PositiveBigIntegerField(default=0)
    mac = models.CharField(max_length=64)
    base_seq = models.PositiveBigIntegerField(default=0)
    base_mac = models.CharField(max_length=64)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        default_permissions = ("view",)

    def __str__(self) -> str:
        return f"Audit chain head (seq {self.seq})"
