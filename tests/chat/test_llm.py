"""The LLM client against the local fault server: retries, deadlines, validation."""

from __future__ import annotations

import email.utils
from typing import Any

import pytest

from chat import llm, llm_retry
from tests.chat import llm_support
from tests.chat.llm_support import (
    API_KEY,
    MESSAGES,
    FakeTime,
    config_for,
    run_with_client,
)
from tests.llm_server import Fault, closed_port_url

llm_server = llm_support.llm_server
llm_server_module = llm_support.llm_server_module


def complete(
    config: llm.LLMConfig, fake: FakeTime | None = None
) -> tuple[str | None, llm.LLMError | None, llm.CallStats]:
    fake = fake or FakeTime()
    stats = llm.CallStats()

    async def action(client: Any) -> Any:
        try:
            text = await llm.complete(
                MESSAGES, config=config, client=client, hooks=fake.hooks(), stats=stats
            )
        except llm.LLMError as error:
            return None, error
        return text, None

    text, error = run_with_client(config, action)
    return text, error, stats


def test_a_normal_reply_is_returned_with_token_counts(llm_server: Any) -> None:
    text, error, stats = complete(config_for(llm_server.base_url))

    assert error is None
    assert text
    assert "Open the app" in text
    assert (stats.tokens_in, stats.tokens_out, stats.upstream_calls) == (42, 17, 1)


def test_the_request_carries_model_limits_and_the_key_only_in_the_header(
    llm_server: Any,
) -> None:
    complete(config_for(llm_server.base_url, max_tokens=99, temperature=0.1))

    sent = llm_server.requests[0]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["body"]["model"] == "test-model"
    assert (sent["body"]["max_tokens"], sent["body"]["temperature"]) == (99, 0.1)
    assert sent["headers"]["authorization"] == f"Bearer {API_KEY}"
    assert API_KEY not in str(sent["body"])


def test_connection_refused_is_retried_within_the_budget_then_fails() -> None:
    fake = FakeTime()
    _, error, stats = complete(config_for(closed_port_url()), fake)

    assert error is not None
    assert error.code == "connect_error"
    assert stats.upstream_calls == 3
    assert len(fake.sleeps) == 2


def test_a_slow_server_times_out_per_attempt(llm_server: Any) -> None:
    llm_server.set_default(Fault(delay=1.0))
    config = config_for(llm_server.base_url, timeout=0.2, max_retries=1)

    _, error, stats = complete(config)

    assert error is not None
    assert error.code == "timeout"
    assert stats.upstream_calls == 2


def test_retry_after_in_seconds_is_waited_exactly(llm_server: Any) -> None:
    llm_server.push(Fault("status", status=429, headers={"Retry-After": "7"}))
    fake = FakeTime()

    text, error, stats = complete(config_for(llm_server.base_url), fake)

    assert error is None
    assert text
    assert fake.sleeps == [7.0]
    assert (stats.retries, stats.upstream_calls) == (1, 2)


def test_retry_after_beyond_the_cap_ends_the_retries(llm_server: Any) -> None:
    llm_server.set_default(Fault("status", status=429, headers={"Retry-After": "3600"}))
    fake = FakeTime()

    _, error, stats = complete(config_for(llm_server.base_url), fake)

    assert error is not None
    assert error.code == "upstream_rate_limited"
    assert error.status_code == 429
    assert fake.sleeps == []
    assert stats.upstream_calls == 1


def test_retry_after_as_an_http_date_is_honoured(llm_server: Any) -> None:
    fake = FakeTime()
    date = email.utils.formatdate(fake.wall() + 5, usegmt=True)
    llm_server.push(Fault("status", status=503, headers={"Retry-After": date}))

    text, error, _ = complete(config_for(llm_server.base_url), fake)

    assert error is None
    assert text
    assert len(fake.sleeps) == 1
    assert 4.0 <= fake.sleeps[0] <= 5.0


@pytest.mark.parametrize("value", ["soon", "-5", "", "NaN", "Wed, 99 Foo 2020"])
def test_garbage_or_negative_retry_after_falls_back_to_backoff(
    llm_server: Any, value: str
) -> None:
    llm_server.push(Fault("status", status=429, headers={"Retry-After": value}))
    fake = FakeTime()

    text, error, _ = complete(config_for(llm_server.base_url), fake)

    assert error is None
    assert text
    assert len(fake.sleeps) == 1
    assert 0.5 <= fake.sleeps[0] <= 0.5


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_then_success_are_retried(llm_server: Any, status: int) -> None:
    llm_server.push(Fault("status", status=status))

    text, error, stats = complete(config_for(llm_server.base_url))

    assert error is None
    assert text
    assert (stats.retries, stats.upstream_calls, stats.status_code) == (1, 2, 200)


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "client_error"),
        (401, "auth_failed"),
        (403, "auth_failed"),
        (422, "client_error"),
    ],
)
def test_client_errors_are_permanent_and_not_retried(
    llm_server: Any, status: int, code: str
) -> None:
    llm_server.set_default(Fault("status", status=status))

    _, error, stats = complete(config_for(llm_server.base_url))

    assert error is not None
    assert (error.code, error.permanent) == (code, True)
    assert error.counts_against_breaker is False
    assert stats.upstream_calls == 1


def test_an_html_page_with_200_is_a_bad_response_without_retry(llm_server: Any) -> None:
    llm_server.set_default(Fault("html"))

    _, error, stats = complete(config_for(llm_server.base_url))

    assert error is not None
    assert error.code == "bad_response"
    assert error.counts_against_breaker is True
    assert stats.upstream_calls == 1


@pytest.mark.parametrize(
    "body",
    [
        {"id": "x"},
        {"choices": []},
        {"choices": [{"message": {"content": None}}]},
        {"choices": [{"message": {"content": 12}}]},
        {"choices": [{"message": {"content": ["a"]}}]},
        {"choices": [{"message": {"content": "   "}}]},
        ["not", "an", "object"],
    ],
)
def test_wrong_shaped_json_is_rejected(llm_server: Any, body: Any) -> None:
    llm_server.set_default(Fault("json", body=body))

    _, error, stats = complete(config_for(llm_server.base_url))

    assert error is not None
    assert error.code == "bad_response"
    assert stats.upstream_calls == 1


def test_huge_content_is_cut_to_the_reply_cap(llm_server: Any) -> None:
    llm_server.set_default(Fault(content="x" * 5000))

    text, error, stats = complete(config_for(llm_server.base_url, max_reply_chars=100))

    assert error is None
    assert text == "x" * 100
    assert stats.truncated is True


def test_a_body_over_the_size_cap_is_refused(llm_server: Any) -> None:
    llm_server.set_default(Fault(content="y" * 70000))

    _, error, _ = complete(config_for(llm_server.base_url))

    assert error is not None
    assert error.code == "response_too_large"


def test_a_truncated_body_is_a_retryable_transport_error(llm_server: Any) -> None:
    llm_server.push(Fault("truncate"))

    text, error, stats = complete(config_for(llm_server.base_url))

    assert error is None
    assert text
    assert stats.upstream_calls == 2


@pytest.mark.parametrize("kind", ["reset", "reset_after_headers"])
def test_connection_resets_are_retried(llm_server: Any, kind: str) -> None:
    llm_server.push(Fault(kind))

    text, error, stats = complete(config_for(llm_server.base_url))

    assert error is None
    assert text
    assert stats.upstream_calls == 2


def test_the_retry_loop_never_passes_the_deadline(llm_server: Any) -> None:
    llm_server.set_default(Fault("status", status=503, headers={"Retry-After": "7"}))
    fake = FakeTime()
    config = config_for(llm_server.base_url, deadline=10.0, max_retries=5)

    _, error, stats = complete(config, fake)

    assert error is not None
    assert error.code == "deadline"
    assert sum(fake.sleeps) <= 10.0
    assert stats.upstream_calls == 2


def test_backoff_grows_with_full_jitter_inside_its_bounds() -> None:
    import random

    config = config_for("https://llm.example.org/v1", initial_delay=0.5, max_delay=4.0)
    rng = random.Random(3)
    for attempt in range(8):
        delays = [llm_retry.backoff_delay(attempt, config, rng) for _ in range(50)]
        ceiling = min(4.0, 0.5 * 2**attempt)
        assert all(0.5 <= d <= ceiling for d in delays)


def test_retry_after_parsing_accepts_seconds_and_dates_only() -> None:
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 30, usegmt=True)

    assert llm_retry.parse_retry_after("7", now=now) == 7.0
    assert llm_retry.parse_retry_after("1.5", now=now) == 1.5
    assert llm_retry.parse_retry_after(date, now=now) == pytest.approx(30.0, abs=1)
    assert llm_retry.parse_retry_after("-1", now=now) is None
    assert llm_retry.parse_retry_after("later", now=now) is None
    assert llm_retry.parse_retry_after("inf", now=now) is None


@pytest.mark.parametrize(
    "url",
    ["http://llm.example.org/v1", "ftp://127.0.0.1/v1", "http://10.0.0.5/v1", "x"],
)
def test_plain_http_is_refused_unless_loopback(url: str) -> None:
    with pytest.raises(llm.LLMError, match="insecure_url"):
        llm.build_client(config_for(url))


@pytest.mark.parametrize(
    "url",
    [
        "https://api.groq.com/openai/v1",
        "http://127.0.0.1:8001/v1",
        "http://localhost:9/v1",
    ],
)
def test_https_and_loopback_http_are_accepted(url: str) -> None:
    llm.check_base_url(url)


def test_tls_verification_is_on_in_the_transport() -> None:
    import ssl

    client = llm.build_client(config_for("https://api.groq.com/openai/v1"))
    transport = client._transport

    assert transport.ssl_context.verify_mode == ssl.CERT_REQUIRED
    assert transport.ssl_context.check_hostname is True


def test_clients_share_one_verifying_tls_context_built_once() -> None:
    first = llm.build_client(config_for("https://api.groq.com/openai/v1"))
    second = llm.build_client(config_for("https://api.groq.com/openai/v1"))

    assert first._transport.ssl_context is second._transport.ssl_context
    assert first._transport.ssl_context.check_hostname is True


def test_errors_and_logs_never_hold_the_key_or_the_body(
    llm_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    llm_server.set_default(
        Fault("status", status=401, body={"error": f"bad key {API_KEY} canary"})
    )
    caplog.set_level("DEBUG")

    _, error, _ = complete(config_for(llm_server.base_url))

    assert error is not None
    assert str(error) == "auth_failed"
    assert API_KEY not in caplog.text
    assert "canary" not in caplog.text


def test_a_missing_key_is_refused_without_a_call(llm_server: Any) -> None:
    _, error, stats = complete(config_for(llm_server.base_url, api_key=""))

    assert error is not None
    assert error.code == "not_configured"
    assert llm_server.calls == 0
    assert stats.upstream_calls == 0


def test_json_nested_too_deeply_is_a_bad_response_not_a_crash(llm_server: Any) -> None:
    llm_server.set_default(Fault("json", body=b"[" * 20000 + b"]" * 20000))

    _, error, stats = complete(config_for(llm_server.base_url))

    assert error is not None
    assert error.code == "bad_response"
    assert stats.upstream_calls == 1


@pytest.mark.parametrize("code", ["client_disconnected", "internal", "auth_failed"])
def test_errors_that_say_nothing_about_the_upstream_never_count_against_the_breaker(
    code: str,
) -> None:
    assert llm.LLMError(code).counts_against_breaker is False


@pytest.mark.parametrize("code", ["timeout", "upstream_rate_limited", "bad_response"])
def test_upstream_failures_count_against_the_breaker(code: str) -> None:
    assert llm.LLMError(code).counts_against_breaker is True


def test_a_cookie_the_provider_sets_is_never_sent_with_a_later_call(
    llm_server: Any,
) -> None:
    llm_server.push(Fault(headers={"Set-Cookie": "session=user-a; Path=/"}), Fault())
    config = config_for(llm_server.base_url)

    async def two_calls(client: Any) -> None:
        for _ in range(2):
            await llm.complete(
                MESSAGES, config=config, client=client, hooks=FakeTime().hooks()
            )

    run_with_client(config, two_calls)

    assert [r["headers"].get("cookie") for r in llm_server.requests] == [None, None]


def test_a_cookie_put_in_the_client_jar_is_never_sent(llm_server: Any) -> None:
    config = config_for(llm_server.base_url)

    async def one_call(client: Any) -> None:
        client.cookies.set("session", "user-a", domain="127.0.0.1")
        await llm.complete(
            MESSAGES, config=config, client=client, hooks=FakeTime().hooks()
        )

    run_with_client(config, one_call)

    assert [r["headers"].get("cookie") for r in llm_server.requests] == [None]


def test_the_llm_configuration_is_read_once_and_again_when_a_setting_changes(
    settings: Any,
) -> None:
    settings.GROQ_MODEL = "model-a"
    first = llm.LLMConfig.from_settings()

    assert llm.LLMConfig.from_settings() is first
    settings.GROQ_MODEL = "model-b"
    assert llm.LLMConfig.from_settings().model == "model-b"
