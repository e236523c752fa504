"""Compliance domain errors; messages are fixed codes, never record content."""

from __future__ import annotations


class RetentionRefused(Exception):
    """The purge refused to run: the clock looks wrong (see retention.clock_check)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"retention purge refused: {reason}")
        self.reason = reason


class AuditDetailsRejected(ValueError):
    """Audit details must be ids, types and counts; the message never holds the value."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"audit details rejected: {reason}")
        self.reason = reason


class LockedOut(Exception):
    """Too many failed logins for this username (or username and IP); try later."""

    def __init__(self) -> None:
        super().__init__("locked_out")
