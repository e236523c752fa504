"""The chaos PHI scan decrypts stored values, so a canary in message text is found."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from django.db import connection

from chat.models import Conversation, Message
from tests import factories
from tests.chaos.conftest import ROOT

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.sqlcipher_only]


def run_scan() -> dict:
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = "stepsync.settings_test"
    env["DATABASE_NAME"] = str(connection.settings_dict["NAME"])
    result = subprocess.run(
        [sys.executable, "-m", "tests.chaos.phiscan"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return dict(json.loads(result.stdout))


def test_a_canary_stored_in_encrypted_message_text_is_found_by_the_scan() -> None:
    user = factories.make_user(username="scan")
    conversation = Conversation.objects.create(user=user)
    Message.objects.create(
        conversation=conversation, role="user", text="mail canary.patient@example.org"
    )

    scan = run_scan()

    assert scan["hits"] == {"chat_message.text": 1}
    assert scan["undecryptable_tables"] == 0


def test_the_scan_reports_no_hit_and_no_value_for_clean_text() -> None:
    user = factories.make_user(username="scan")
    conversation = Conversation.objects.create(user=user, title="walks")
    Message.objects.create(conversation=conversation, role="user", text="steps")

    scan = run_scan()

    assert scan["hits"] == {}
    assert scan["rows"] >= 3
