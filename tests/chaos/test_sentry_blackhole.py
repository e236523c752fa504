"""RELIABILITY.md §2.1 #32: the Sentry endpoint accepts connections and never answers."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from bench.load import harness
from tests.chaos import api
from tests.chaos.conftest import ChaosFigures, Deployment

pytestmark = [pytest.mark.chaos, pytest.mark.slow, pytest.mark.sqlcipher_only]


class BlackHole:
    """A loopback TCP server that accepts, reads, and never writes a byte."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.bytes_received = 0
        self.held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> BlackHole:
        self._thread.start()
        return self

    def _run(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                self._drain()
                continue
            conn.setblocking(False)
            self.accepted += 1
            self.held.append(conn)

    def _drain(self) -> None:
        for conn in self.held:
            try:
                self.bytes_received += len(conn.recv(65536))
            except (BlockingIOError, OSError):
                continue

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for conn in self.held:
            conn.close()
        self.sock.close()


@pytest.fixture
def black_hole() -> Iterator[BlackHole]:
    hole = BlackHole().start()
    yield hole
    hole.stop()


def test_a_sentry_endpoint_that_never_answers_neither_blocks_nor_breaks_requests(
    deploy: Callable[..., Deployment],
    black_hole: BlackHole,
    chaos_figures: ChaosFigures,
) -> None:
    dsn = f"http://publickey@127.0.0.1:{black_hole.port}/1"
    deployment = deploy(
        workers=1,
        llm=False,
        extra={"SENTRY_DSN": dsn, "DATABASE_BUSY_TIMEOUT_MS": "200"},
    )
    token = deployment.users(1)[0]["token"]
    with api.client(deployment.base_url, token, timeout=10) as http:
        conversation = api.start_conversation(http)
        locker = harness.db_connect(deployment.config)
        locker.execute("BEGIN IMMEDIATE")
        try:
            errors = [
                api.post_message(http, conversation, api.CANARY_TEXT) for _ in range(3)
            ]
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        after = [
            api.post_message(http, conversation, api.CANARY_TEXT) for _ in range(10)
        ]

    stored = deployment.count("SELECT COUNT(*) FROM chat_message WHERE role = 'user'")
    accepted = sum(r.status_code == 201 for r in after)
    chaos_figures.scenarios.append("32 sentry black hole")
    chaos_figures.faults_injected += 1 + len(errors)
    chaos_figures.messages_accepted += accepted
    chaos_figures.messages_lost += max(0, accepted - stored)
    chaos_figures.messages_duplicated += max(0, stored - accepted)
    for response in errors:
        api.assert_user_visible_error(response, 503)
    assert [r.status_code for r in after] == [201] * 10
    assert black_hole.accepted >= 1
    assert "Traceback" not in deployment.logs()
    assert stored == 10
