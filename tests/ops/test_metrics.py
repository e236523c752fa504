"""/metrics: token protection, request series across two worker processes, DB gauges."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.cache import cache
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from tests.ops.conftest import ROOT, run_python, subprocess_env


def _auth(settings: object) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {settings.METRICS_TOKEN}"}


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


@pytest.mark.django_db
def test_metrics_without_a_configured_token_is_not_found(
    client: Client, settings: object
) -> None:
    settings.METRICS_TOKEN = ""

    assert client.get("/metrics").status_code == 404


@pytest.mark.django_db
def test_metrics_with_a_wrong_token_is_refused(client: Client) -> None:
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong")

    assert response.status_code == 401
    assert response.cookies == {}


@pytest.mark.django_db
def test_metrics_with_the_token_is_prometheus_text(
    client: Client, settings: object
) -> None:
    cache.clear()
    client.get("/health/live")

    response = client.get("/metrics", **_auth(settings))

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    names = {f.name for f in text_string_to_metric_families(response.content.decode())}
    assert {
        "stepsync_http_request_duration_seconds",
        "stepsync_http_requests",
        "stepsync_breaker_state",
        "stepsync_active_sessions",
        "stepsync_database_size_bytes",
        "stepsync_messages_per_second",
    } <= names


@pytest.mark.django_db
def test_route_labels_are_url_names_not_paths(client: Client, settings: object) -> None:
    client.get("/api/conversations/987654321/")

    text = client.get("/metrics", **_auth(settings)).content.decode()

    assert "987654321" not in text


@pytest.mark.django_db
def test_llm_and_phi_gauges_come_from_stored_records(
    client: Client, settings: object, patient: object
) -> None:
    from chat.models import Conversation, LLMCall, Message

    cache.clear()
    for latency in (100, 200, 300, 400):
        LLMCall.objects.create(
            outcome="ok", latency_ms=latency, tokens_in=10, tokens_out=5
        )
    LLMCall.objects.create(outcome="timeout", latency_ms=5000)
    convo = Conversation.objects.create(user=patient, title="t")
    Message.objects.create(
        conversation=convo, role="user", text="[SSN]", redactions={"SSN": 2, "BOGUS": 9}
    )

    samples = _samples(client.get("/metrics", **_auth(settings)).content.decode())

    assert samples[("stepsync_llm_calls_last_hour", (("outcome", "ok"),))] == 4
    assert samples[("stepsync_llm_calls_last_hour", (("outcome", "timeout"),))] == 1
    assert samples[("stepsync_llm_tokens_last_hour", (("direction", "in"),))] == 40
    assert samples[("stepsync_llm_error_ratio_last_hour", ())] == pytest.approx(0.2)
    assert samples[("stepsync_phi_detections_last_hour", (("type", "SSN"),))] == 2
    assert not any(key[1] == (("type", "BOGUS"),) for key in samples)


WORKER = """
import django
django.setup()
from django.test.utils import setup_test_environment
setup_test_environment()
from django.test import Client
client = Client()
for path, method, times in {plan}:
    for _ in range(times):
        getattr(client, method)(path)
"""

SCRAPE = """
import django
django.setup()
from django.test.utils import setup_test_environment
setup_test_environment()
from django.conf import settings
from django.test import Client
response = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer " + settings.METRICS_TOKEN)
print(response.content.decode())
"""


@pytest.mark.django_db(transaction=True)
def test_request_metrics_add_up_across_two_worker_processes(tmp_path: object) -> None:
    env = subprocess_env(PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    plans = [
        [("/health/live", "get", 3), ("/no/such/page/", "get", 1)],
        [("/health/live", "get", 2), ("/health/", "post", 1)],
    ]
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER.format(plan=json.dumps(plan))],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for plan in plans
    ]
    for worker in workers:
        _, err = worker.communicate(timeout=60)
        assert worker.returncode == 0, err[-2000:]

    scraped = run_python(SCRAPE, env=env)

    assert scraped.returncode == 0, scraped.stderr[-2000:]
    samples = _samples(scraped.stdout)
    live = (("method", "GET"), ("route", "ops:health-live"), ("status_class", "2xx"))
    assert samples[("stepsync_http_requests_total", live)] == 5
    assert samples[("stepsync_http_request_duration_seconds_count", live)] == 5
    post = (("method", "POST"), ("route", "ops:health"), ("status_class", "4xx"))
    assert samples[("stepsync_http_requests_total", post)] == 1
    missing = (("method", "GET"), ("route", "unmatched"), ("status_class", "4xx"))
    assert samples[("stepsync_http_requests_total", missing)] == 1
    assert samples[("stepsync_http_errors_total", (("error_class", "client"),))] == 2


@pytest.mark.django_db(transaction=True)
def test_a_standalone_runner_samples_the_servers_multiprocess_files(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    from pathlib import Path

    from django.utils import timezone

    from ops import sampling
    from ops.models import RequestMinute

    servers = Path(str(tmp_path)) / "prometheus-multiproc"
    live_server = servers / str(os.getpid())
    live_server.mkdir(parents=True)
    monkeypatch.setattr(sampling, "METRICS_DIR", servers)
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    monkeypatch.setattr(sampling, "_previous", {})
    env = subprocess_env(PROMETHEUS_MULTIPROC_DIR=str(live_server))

    def serve(plan: list[tuple[str, str, int]]) -> None:
        done = run_python(WORKER.format(plan=json.dumps(plan)), env=env)
        assert done.returncode == 0, done.stderr[-2000:]

    serve([("/health/live", "get", 2)])
    baseline = sampling.sample_minute(now=timezone.now())
    serve([("/health/live", "get", 4), ("/no/such/page/", "get", 1)])
    sampling.sample_minute(now=timezone.now())

    assert baseline > 0
    minute = RequestMinute.objects.get()
    assert minute.requests == 5
    assert minute.server_errors == 0
    assert sum(minute.buckets.values()) > 0


@pytest.mark.django_db
def test_without_any_server_files_no_http_minute_is_written(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pathlib import Path

    from django.utils import timezone

    from ops import sampling
    from ops.models import RequestMinute

    monkeypatch.setattr(sampling, "METRICS_DIR", Path(str(tmp_path)) / "none")
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)

    sampling.sample_minute(now=timezone.now())
    sampling.sample_minute(now=timezone.now())

    assert RequestMinute.objects.count() == 0


@pytest.mark.django_db
def test_rate_limit_gauge_tells_our_limiter_from_the_provider(
    client: Client, settings: object
) -> None:
    from chat.models import LLMCall

    cache.clear()
    LLMCall.objects.create(outcome="rate_limited", upstream_calls=0)
    LLMCall.objects.create(outcome="rate_limited", upstream_calls=2, status_code=429)
    LLMCall.objects.create(outcome="rate_limited", upstream_calls=1, status_code=429)

    samples = _samples(client.get("/metrics", **_auth(settings)).content.decode())

    limited = "stepsync_llm_rate_limited_last_hour"
    assert samples[(limited, (("scope", "local"),))] == 1
    assert samples[(limited, (("scope", "provider"),))] == 2


@pytest.mark.django_db(transaction=True)
def test_an_empty_multiprocess_directory_setting_writes_no_files(
    tmp_path: Path,
) -> None:
    # prometheus-client treats a set-but-empty variable as "the current directory".
    env = subprocess_env(PROMETHEUS_MULTIPROC_DIR="")
    code = WORKER.format(plan=json.dumps([("/health/live", "get", 2)]))
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys; sys.path.insert(0, {str(ROOT)!r})\n{code}",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-300:]
    assert list(tmp_path.iterdir()) == []
