"""`serve --workers N`: each worker listens on the port itself (SO_REUSEPORT), so new
connections spread over the workers; a dead worker is replaced."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from bench.load import harness
from stepsync.serve_workers import reuse_port_socket

pytestmark = [pytest.mark.slow, pytest.mark.sqlcipher_only]


def test_two_workers_can_listen_on_one_port() -> None:
    first = reuse_port_socket("127.0.0.1", 0, listen=True)
    port = first.getsockname()[1]
    second = reuse_port_socket("127.0.0.1", port, listen=True)
    try:
        assert second.getsockname()[1] == port
    finally:
        first.close()
        second.close()


def test_a_port_held_without_reuse_port_is_refused() -> None:
    plain = socket.socket()
    plain.bind(("127.0.0.1", 0))
    plain.listen()
    try:
        with pytest.raises(OSError):
            reuse_port_socket("127.0.0.1", plain.getsockname()[1], listen=False)
    finally:
        plain.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[harness.Server]:
    config = harness.app_config(tmp_path_factory.mktemp("workers"))
    harness.prepare_database(config)
    app = harness.start_app(config, workers=2)
    try:
        _wait_for_listeners(app)
        yield app
    finally:
        app.stop()


def _workers(app: harness.Server) -> list[psutil.Process]:
    found = []
    for child in psutil.Process(app.pid).children():
        try:
            if "spawn_main" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:  # a killed worker not yet reaped (a zombie)
            continue
    return found


def _listens(worker: psutil.Process, port: int) -> bool:
    """True once the worker has its own listening socket on ``port``."""
    try:
        found = worker.net_connections(kind="tcp")
    except psutil.Error:
        return False
    return any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in found)


def _wait_for_listeners(app: harness.Server, gone: int = 0) -> None:
    """Until two workers (``gone`` not among them) listen on the port (60 s)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        workers = [w for w in _workers(app) if w.pid != gone]
        if sum(_listens(w, app.port) for w in workers) == 2:
            return
        time.sleep(0.2)


def _connections_per_worker(app: harness.Server, count: int) -> list[int]:
    clients = [http.client.HTTPConnection("127.0.0.1", app.port) for _ in range(count)]
    try:
        for client in clients:
            client.request("GET", "/health/live")
            client.getresponse().read()
        ports = {c.sock.getsockname()[1] for c in clients if c.sock is not None}
        return [
            sum(
                1
                for conn in worker.net_connections(kind="tcp")
                if conn.raddr and conn.raddr.port in ports
            )
            for worker in _workers(app)
        ]
    finally:
        for client in clients:
            client.close()


def test_new_connections_reach_every_worker(server: harness.Server) -> None:
    per_worker = _connections_per_worker(server, 40)

    assert len(per_worker) == 2
    assert sum(per_worker) == 40
    assert min(per_worker) > 0


def test_an_idle_keep_alive_connection_outlives_uvicorns_default_5_seconds(
    server: harness.Server,
) -> None:
    client = http.client.HTTPConnection("127.0.0.1", server.port)
    try:
        client.request("GET", "/health/live")
        client.getresponse().read()
        first = client.sock.getsockname() if client.sock else None
        time.sleep(6)  # past uvicorn's default; a client idles this long between turns

        client.request("GET", "/health/live")
        status = client.getresponse().status
        again = client.sock.getsockname() if client.sock else None
    finally:
        client.close()

    assert status == 200
    assert again == first  # the same connection: the server had not closed it


def test_a_killed_worker_is_replaced_and_the_port_keeps_answering(
    server: harness.Server,
) -> None:
    victim = _workers(server)[0].pid
    os.kill(victim, signal.SIGKILL)

    _wait_for_listeners(server, gone=victim)

    assert victim not in [w.pid for w in _workers(server)]
    assert sum(_listens(w, server.port) for w in _workers(server)) == 2
    assert min(_connections_per_worker(server, 40)) > 0


def test_stopping_the_server_stops_its_workers(tmp_path: Path) -> None:
    config = harness.app_config(tmp_path)
    harness.prepare_database(config)
    app = harness.start_app(config, workers=2)
    workers = _workers(app)

    os.kill(app.pid, signal.SIGTERM)

    gone, alive = psutil.wait_procs(workers, timeout=30)
    assert not alive
    assert len(gone) == 2
