"""RedisStore against a local Redis: values read back whatever the URL's options."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from stepsync.sharedstate import RedisStore


@pytest.fixture
def decoding_store(redis_url: str) -> Iterator[RedisStore]:
    """A store whose REDIS_URL asks redis-py to return str instead of bytes."""
    prefix = f"stepsync-test:{uuid.uuid4().hex}:"
    store = RedisStore(f"{redis_url}?decode_responses=true", prefix=prefix)
    yield store
    for key in store.client.scan_iter(match=prefix + "*"):
        store.client.delete(key)


def test_a_value_reads_back_when_the_url_decodes_responses(
    decoding_store: RedisStore,
) -> None:
    written = decoding_store.compare_and_set("k", expected_version=0, value="open")

    read = decoding_store.read("k")

    assert written is True
    assert (read.value, read.version) == ("open", 1)
