"""The cached CSP middleware sets exactly the headers django-csp's own would."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from csp.constants import HEADER, HEADER_REPORT_ONLY, NONCE
from csp.decorators import csp, csp_exempt, csp_replace, csp_update
from csp.exceptions import CSPNonceError
from csp.middleware import CSPMiddleware as DjangoCSPMiddleware
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory, override_settings

from stepsync import middleware_csp
from stepsync.middleware_csp import CSPMiddleware

REPORT_ONLY = {"DIRECTIVES": {"default-src": ["'self'"], "report-uri": "/csp/"}}


def _plain(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


@csp_update({"img-src": "https://cdn.example.org"})
def _updated(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


@csp_replace({"script-src": "https://js.example.org"})
def _replaced(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


@csp({"default-src": ["'none'"]})
def _configured(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


@csp_exempt()
def _exempt(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


def _draws_a_nonce(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"nonce {request.csp_nonce}")  # type: ignore[attr-defined]


def _headers(
    middleware_class: type, view: Callable[..., Any], path: str = "/"
) -> dict[str, str]:
    request = RequestFactory().get(path)
    response = middleware_class(view)(request)
    return {
        name: response[name]
        for name in (HEADER, HEADER_REPORT_ONLY)
        if name in response
    }


@pytest.fixture(autouse=True)
def _fresh_cache() -> Any:
    middleware_csp.settings_policy.cache_clear()
    yield
    middleware_csp.settings_policy.cache_clear()


@pytest.mark.parametrize("view", [_plain, _configured, _updated, _replaced, _exempt])
def test_the_headers_are_django_csps_for_every_kind_of_view(
    view: Callable[..., Any],
) -> None:
    assert _headers(CSPMiddleware, view) == _headers(DjangoCSPMiddleware, view)


def test_a_plain_response_gets_the_settings_policy() -> None:
    assert "default-src 'self'" in _headers(CSPMiddleware, _plain)[HEADER]


@override_settings(CONTENT_SECURITY_POLICY={"DIRECTIVES": {"script-src": [NONCE]}})
def test_a_view_drawing_a_nonce_gets_it_in_its_policy() -> None:
    request = RequestFactory().get("/")
    response = CSPMiddleware(_draws_a_nonce)(request)
    nonce = response.content.decode().split()[-1]
    assert f"'nonce-{nonce}'" in response[HEADER]


def test_a_nonce_drawn_after_the_header_is_written_is_an_error() -> None:
    request = RequestFactory().get("/")
    CSPMiddleware(_plain)(request)
    with pytest.raises(CSPNonceError):
        str(request.csp_nonce)  # type: ignore[attr-defined]


def test_the_policy_is_built_once_for_many_responses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built: list[bool] = []
    original = middleware_csp.build_policy
    monkeypatch.setattr(
        middleware_csp,
        "build_policy",
        lambda **kw: built.append(kw["report_only"]) or original(**kw),
    )
    for _ in range(5):
        _headers(CSPMiddleware, _plain)
    assert sorted(built) == [False, True]


def test_a_changed_policy_setting_is_used_at_once() -> None:
    _headers(CSPMiddleware, _plain)
    with override_settings(CONTENT_SECURITY_POLICY_REPORT_ONLY=REPORT_ONLY):
        headers = _headers(CSPMiddleware, _plain)
        assert headers == _headers(DjangoCSPMiddleware, _plain)
    assert HEADER_REPORT_ONLY in headers
    assert HEADER_REPORT_ONLY not in _headers(CSPMiddleware, _plain)


def test_an_excluded_url_prefix_gets_no_header() -> None:
    policy = {
        "EXCLUDE_URL_PREFIXES": ["/hooks/"],
        "DIRECTIVES": {"default-src": ["'self'"]},
    }
    with override_settings(CONTENT_SECURITY_POLICY=policy):
        assert HEADER not in _headers(CSPMiddleware, _plain, "/hooks/x")
        assert HEADER in _headers(CSPMiddleware, _plain, "/pages/x")


@override_settings(DEBUG=True)
def test_debug_error_pages_are_left_alone_as_django_csp_does() -> None:
    def not_found(request: HttpRequest) -> HttpResponse:
        return HttpResponse("missing", status=404)

    assert _headers(CSPMiddleware, not_found) == {}
    assert _headers(DjangoCSPMiddleware, not_found) == {}


def test_the_asgi_stack_runs_this_middleware() -> None:
    from django.conf import settings

    assert "stepsync.middleware_csp.CSPMiddleware" in settings.MIDDLEWARE
    assert "csp.middleware.CSPMiddleware" not in settings.MIDDLEWARE
