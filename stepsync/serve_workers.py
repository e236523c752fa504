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

Idle wake-ups cost CPU that the requests then pay for: on this VM a process that
wakes after ~100 ms asleep runs its next work 1.5-2x slower (PERFORMANCE.md). An
idle worker woke 10 times a second for uvicorn's tick (2.0-2.5 ms of CPU per
second each) and the supervisor polled its workers twice a second (0.5 ms/s).
Workers now tick once a second (the Date header's resolution) and wake at once
on a signal; the supervisor sleeps until a worker exits or a signal arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
import socket
import sys
from multiprocessing.connection import wait
from types import FrameType
from typing import Any

import uvicorn

RESTART_DELAY_SECONDS = 1.0
TICK_SECONDS = 1.0  # uvicorn ticks every 0.1 s and updates the Date header every 10th
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


class QuietServer(uvicorn.Server):
    """uvicorn's server ticking once per TICK_SECONDS, and at once on a signal."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._woken: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def main_loop(self) -> None:
        self._loop, self._woken = asyncio.get_running_loop(), asyncio.Event()
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 10) % 864000  # a multiple of 10: the Date header
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken.wait(), TICK_SECONDS)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        if self._loop is not None and self._woken is not None:
            self._loop.call_soon_threadsafe(self._woken.set)


def worker_main(host: str, port: int, options: dict[str, Any]) -> None:
    """One worker (in a spawned process): its own socket, one uvicorn server."""
    from stepsync.serve import die_with_parent

    die_with_parent()
    sock = reuse_port_socket(host, port, listen=True)
    config = uvicorn.Config("stepsync.asgi:application", **options)
    QuietServer(config).run(sockets=[sock])


class WorkerPool:
    """Starts ``count`` workers on ``host:port``, keeps them alive, stops them."""

    def __init__(self, host: str, port: int, count: int, options: dict[str, Any]):
        self.reservation = reuse_port_socket(host, port, listen=False)
        self.host, self.port = host, int(self.reservation.getsockname()[1])
        self.count, self.options = count, options
        self.context = multiprocessing.get_context("spawn")
        self.workers: list[Any] = []
        self.stopping = False
        self._wake_read, self._wake_write = os.pipe()  # written by the signal handler
        os.set_blocking(self._wake_write, False)  # a flood of signals never blocks it

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
            signal.signal(sig, self._on_signal)
        try:
            self.workers = [self._spawn() for _ in range(self.count)]
            while not self.stopping:
                self._sleep([process.sentinel for process in self.workers])
                self._replace_dead()
        finally:
            self.stop()
            self.reservation.close()
            os.close(self._wake_read)
            os.close(self._wake_write)
        return 0

    def _on_signal(self, *_: object) -> None:
        self.stopping = True
        with contextlib.suppress(BlockingIOError):  # already woken
            os.write(self._wake_write, b"!")

    def _sleep(self, sentinels: list[int], timeout: float | None = None) -> None:
        """Until a sentinel is ready (a worker exited), a signal, or ``timeout``."""
        if not self.stopping:
            wait([*sentinels, self._wake_read], timeout)

    def _replace_dead(self) -> None:
        for index, process in enumerate(self.workers):
            if process.is_alive() or self.stopping:
                continue
            print(
                f"stepsync: worker {process.pid} exited ({process.exitcode}); "
                "restarting",
                file=sys.stderr,
                flush=True,
            )
            self._sleep([], RESTART_DELAY_SECONDS)
            if self.stopping:
                return
            self.workers[index] = self._spawn()

    def stop(self) -> None:
        self.stopping = True
        for process in self.workers:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn's graceful shutdown
        for process in self.workers:
            process.join(STOP_TIMEOUT_SECONDS)
            if process.is_alive():
                process.kill()
                process.join()
