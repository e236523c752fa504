"""Several uvicorn workers, each with its own listening socket on one port.

uvicorn's ``--workers`` shares one listening socket between the workers, and
whichever worker is idle when connections arrive accepts them (uvloop accepts a
whole backlog at a time). Keep-alive clients then stay where they landed: in the
llm-300 load run one worker did 104 s of CPU and the other 20 s, so the machine
ran at 1.07 of its 2 cores while requests queued. Here every worker binds the
port with ``SO_REUSEPORT`` and the kernel spreads new connections across the
workers' sockets by hash.

The supervisor (this process) reserves the port with a bound, non-listening
socket (no connection is ever routed to it), starts the workers as spawned
processes, restarts one that dies, and on SIGTERM/SIGINT stops them all with
uvicorn's graceful shutdown. A worker gets SIGTERM when the supervisor dies
(Linux), so it never serves on alone.
"""

from __future__ import annotations

import multiprocessing
import signal
import socket
import sys
import threading
from typing import Any

RESTART_DELAY_SECONDS = 1.0
STOP_TIMEOUT_SECONDS = 30.0
BACKLOG = 2048


def reuse_port_socket(host: str, port: int, *, listen: bool) -> socket.socket:
    """A TCP socket bound to ``host:port`` with SO_REUSEPORT (listening if asked)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
        if listen:
            sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


def worker_main(host: str, port: int, options: dict[str, Any]) -> None:
    """One worker (in a spawned process): its own socket, one uvicorn server."""
    import uvicorn

    from stepsync.serve import die_with_parent

    die_with_parent()
    sock = reuse_port_socket(host, port, listen=True)
    config = uvicorn.Config("stepsync.asgi:application", **options)
    uvicorn.Server(config).run(sockets=[sock])


class WorkerPool:
    """Starts ``count`` workers on ``host:port``, keeps them alive, stops them."""

    def __init__(self, host: str, port: int, count: int, options: dict[str, Any]):
        self.reservation = reuse_port_socket(host, port, listen=False)
        self.host, self.port = host, int(self.reservation.getsockname()[1])
        self.count, self.options = count, options
        self.context = multiprocessing.get_context("spawn")
        self.workers: list[Any] = []
        self.stopping = threading.Event()

    def _spawn(self) -> Any:
        process = self.context.Process(
            target=worker_main,
            args=(self.host, self.port, self.options),
            name="stepsync-worker",
        )
        process.start()
        return process

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT; returns the exit status."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stopping.set())
        try:
            self.workers = [self._spawn() for _ in range(self.count)]
            while not self.stopping.wait(0.5):
                self._replace_dead()
        finally:
            self.stop()
            self.reservation.close()
        return 0

    def _replace_dead(self) -> None:
        for index, process in enumerate(self.workers):
            if process.is_alive() or self.stopping.is_set():
                continue
            print(
                f"stepsync: worker {process.pid} exited ({process.exitcode}); "
                "restarting",
                file=sys.stderr,
                flush=True,
            )
            if self.stopping.wait(RESTART_DELAY_SECONDS):
                return
            self.workers[index] = self._spawn()

    def stop(self) -> None:
        self.stopping.set()
        for process in self.workers:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn's graceful shutdown
        for process in self.workers:
            process.join(STOP_TIMEOUT_SECONDS)
            if process.is_alive():
                process.kill()
                process.join()
