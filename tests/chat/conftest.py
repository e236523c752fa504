"""Fixtures for the chat tests: audit rows, API clients and conversations."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient


def audit_rows(action: str, **filters: Any) -> list[Any]:
    """Audit events of ``action`` (an AuditAction name), oldest first."""
    from compliance.models import AuditAction, AuditEvent

    rows = AuditEvent.objects.filter(action=AuditAction[action], **filters)
    return list(rows.order_by("seq"))


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def patient_api(patient: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user=patient)
    return client


@pytest.fixture
def other_api(other_patient: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user=other_patient)
    return client


@pytest.fixture
def conversation(patient: Any) -> Any:
    from chat.services import conversation_start

    return conversation_start(user=patient)
