"""Tests for the sanitizer's exceptions: fail closed and never carry input."""

import traceback

import pytest

from chat import phi_names, sanitizer
from chat.sanitizer import (
    PHIDetectedException,
    SanitizerError,
    sanitize,
    sanitize_or_raise,
)

SECRET = "Zebulon Canarywood 123-45-6789"


def _rendered(exc: BaseException) -> str:
    notes = " ".join(getattr(exc, "__notes__", []))
    formatted = "".join(traceback.format_exception(exc))
    return " ".join([str(exc), repr(exc), repr(exc.args), notes, formatted])


def _explode(text: str) -> list[tuple[int, int, str]]:
    raise ValueError(f"detector broke on {text!r}")


def _raised(func: object, *args: object, **kwargs: object) -> BaseException:
    try:
        func(*args, **kwargs)  # type: ignore[operator]
    except Exception as exc:
        return exc
    raise AssertionError("nothing was raised")


def test_strict_raise_carries_only_types_and_counts() -> None:
    exc = _raised(sanitize_or_raise, "ssn 123-45-6789 and ssn 078-05-1120")

    assert isinstance(exc, PHIDetectedException)
    assert exc.types == ("SSN",)
    assert exc.counts == {"SSN": 2}


def test_phi_exception_text_repr_and_traceback_hold_no_input() -> None:
    exc = _raised(sanitize_or_raise, f"I am {SECRET}")

    rendered = _rendered(exc)

    assert "123-45-6789" not in rendered
    assert "Zebulon" not in rendered


def test_phi_exception_has_no_chained_context() -> None:
    exc = _raised(sanitize_or_raise, "ssn 123-45-6789")

    assert exc.__context__ is None
    assert exc.__cause__ is None


def test_sanitize_or_raise_returns_the_result_when_nothing_critical() -> None:
    result = sanitize_or_raise("call 555-0142")

    assert result.text == "call [PHONE]"


def test_internal_error_blocks_the_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(phi_names, "detect", _explode)

    result = sanitize(f"hello {SECRET}")

    assert result.blocked is True
    assert result.blocked_types == ("SANITIZER_ERROR",)
    assert result.text == sanitizer.ERROR_TEXT
    assert result.spans == ()


def test_internal_error_result_holds_no_input(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(phi_names, "detect", _explode)

    result = sanitize(f"hello {SECRET}")

    assert "Zebulon" not in repr(result)


def test_internal_error_raises_sanitizer_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(phi_names, "detect", _explode)

    exc = _raised(sanitize_or_raise, f"hello {SECRET}")

    assert isinstance(exc, SanitizerError)


def test_sanitizer_error_and_traceback_hold_no_input(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(phi_names, "detect", _explode)

    exc = _raised(sanitize_or_raise, f"hello {SECRET}")

    assert "Zebulon" not in _rendered(exc)
    assert "123-45-6789" not in _rendered(exc)
    assert exc.__context__ is None


def test_non_string_input_fails_closed() -> None:
    result = sanitize(None)  # type: ignore[arg-type]

    assert result.blocked_types == ("SANITIZER_ERROR",)
