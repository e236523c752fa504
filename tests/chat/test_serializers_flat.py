"""A flat serializer validates exactly as DRF's own, with its fields copied shallowly."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework import serializers

from chat.serializers import FlatSerializer, MessageInputSerializer, StrictCharField


class DeepInput(serializers.Serializer):
    text = StrictCharField(required=False, allow_blank=True, trim_whitespace=False)
    quick_reply = StrictCharField(required=False, max_length=64)


@pytest.mark.parametrize(
    "data",
    [
        {"text": "steps stopped"},
        {"quick_reply": "x" * 65},
        {"text": 123},
        {"text": "a\ud800b"},
        {"quick_reply": None},
        [],
    ],
)
def test_validation_results_and_errors_are_drfs_own(data: Any) -> None:
    flat, deep = MessageInputSerializer(data=data), DeepInput(data=data)

    assert flat.is_valid() == deep.is_valid()
    assert (flat.errors, dict(flat.validated_data)) == (
        deep.errors,
        dict(deep.validated_data),
    )


def test_each_instance_binds_its_own_copies_and_leaves_the_declared_fields_alone() -> (
    None
):
    first, second = MessageInputSerializer(data={}), MessageInputSerializer(data={})

    assert first.fields["text"] is not second.fields["text"]
    assert first.fields["text"].parent is first
    assert MessageInputSerializer._declared_fields["text"].field_name is None


def test_a_nested_serializer_is_refused() -> None:
    class Nested(FlatSerializer):
        inner = DeepInput()

    with pytest.raises(TypeError, match="nested serializer"):
        Nested(data={}).fields  # noqa: B018 - the property builds the fields
