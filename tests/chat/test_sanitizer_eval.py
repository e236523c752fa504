"""Quality gates for the sanitizer on the labelled corpora in tests/data/."""

import pytest

from bench.bench_sanitizer import CLEAN, LABELLED, Score, evaluate, load


@pytest.fixture(scope="module")
def score() -> Score:
    return evaluate(load(LABELLED), load(CLEAN))


def test_corpus_is_large_enough_to_mean_something(score: Score) -> None:
    assert sum(score.gold.values()) >= 250
    assert score.gold["NAME"] >= 40
    assert score.gold["ADDRESS"] >= 40
    assert score.clean_total >= 300


def test_corpus_covers_every_phi_type(score: Score) -> None:
    from chat.sanitizer import PHI_TYPES

    assert set(score.gold) == set(PHI_TYPES)


def test_overall_recall_is_at_least_90_percent(score: Score) -> None:
    assert score.recall() >= 0.9


def test_name_recall_is_at_least_80_percent(score: Score) -> None:
    assert score.recall("NAME") >= 0.8


def test_address_recall_is_at_least_80_percent(score: Score) -> None:
    assert score.recall("ADDRESS") >= 0.8


def test_at_most_2_percent_of_clean_questions_are_flagged(score: Score) -> None:
    assert score.fp_share() <= 0.02


def test_an_entity_is_found_only_when_spans_of_its_own_type_cover_it() -> None:
    from bench.bench_sanitizer import _detected
    from chat.sanitizer import Span

    text = "I live at 42 Oak Street now"
    gold = {"start": 10, "end": 23, "type": "ADDRESS"}
    spans = (Span(10, 16, "ADDRESS"), Span(17, 23, "NAME"))

    assert _detected(text, gold, spans) is False


def test_an_entity_covered_by_two_spans_of_its_type_is_found() -> None:
    from bench.bench_sanitizer import _detected
    from chat.sanitizer import Span

    text = "I live at 42 Oak Street now"
    gold = {"start": 10, "end": 23, "type": "ADDRESS"}
    spans = (Span(10, 16, "ADDRESS"), Span(17, 23, "ADDRESS"))

    assert _detected(text, gold, spans) is True
