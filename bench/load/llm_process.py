"""The load benchmark's LLM: tests/llm_server.py's test server in a process of its own.

``python -m bench.load.llm_process --port N --latency-ms 500 --ttft-ms 300
--tokens 20 --token-interval-ms 10 [--api-key K]`` serves the one OpenAI-compatible
test server of the project (the chaos tests' fault server) with the benchmark's
knobs: a non-streamed answer arrives after ``latency``; a stream opens after
``ttft`` and sends ``tokens`` chunks ``token-interval`` apart. It runs apart from the
load generator so that neither steals the other's interpreter.

Control paths (answered here, never counted as LLM calls): ``GET /_stats`` (counts
and the median service time of non-streamed answers, never content) and
``POST /_reset``. Request bodies are dropped once answered, so a soak does not grow
this process.

The benchmark starts it with ``start_llm_server`` and reads it with
``llm_server_call``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import threading
import time
import urllib.request
from collections import deque
from pathlib import Path
from typing import Any

from bench.load import harness
from tests.llm_server import Fault, LLMTestServer

REPLY = (
    "Step counts usually arrive within 15 to 30 minutes. Open the source app once, "
    "check that background refresh is on, and make sure only one app writes steps."
)


class BenchLLMServer(LLMTestServer):
    """The test server with latency knobs, counters and the control paths."""

    def __init__(
        self,
        *,
        latency_ms: float,
        ttft_ms: float,
        tokens: int,
        token_interval_ms: float,
        api_key: str = "",
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.plain = Fault(delay=latency_ms / 1000, content=REPLY)
        self.streamed_fault = Fault(
            delay=ttft_ms / 1000,
            chunk_delay=token_interval_ms / 1000,
            chunks=max(1, tokens),
            content=REPLY,
        )
        self.responder = self._choose
        self.served_ms: deque[float] = deque(maxlen=200_000)
        self.counters = {"streamed": 0, "bad_auth": 0, "in_flight": 0}
        self.max_in_flight = 0

    def _choose(self, body: dict[str, Any] | None) -> Fault:
        return self.streamed_fault if body and body.get("stream") else self.plain

    def stats(self) -> dict[str, Any]:
        with self._lock:
            calls = sum(1 for r in self.requests if not r["path"].startswith("/_"))
            served = list(self.served_ms)
            return {
                "calls": calls,
                "streamed": self.counters["streamed"],
                "bad_auth": self.counters["bad_auth"],
                "in_flight": self.counters["in_flight"],
                "max_in_flight": self.max_in_flight,
                "served_median_ms": statistics.median(served) if served else None,
            }

    def reset_counts(self) -> None:
        with self._lock:
            self.requests.clear()
            self.served_ms.clear()
            self.counters["streamed"] = self.counters["bad_auth"] = 0
            self.max_in_flight = self.counters["in_flight"]

    async def _respond(
        self, request: dict[str, Any], writer: asyncio.StreamWriter
    ) -> bool:
        if request["path"].startswith("/_"):
            if request["path"].startswith("/_reset"):
                self.reset_counts()
            payload = json.dumps(self.stats()).encode()
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(payload)}\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
            return True
        body = request["body"] if isinstance(request["body"], dict) else {}
        streamed = bool(body.get("stream"))
        expected = f"Bearer {self.api_key}" if self.api_key else ""
        with self._lock:
            self.counters["in_flight"] += 1
            self.max_in_flight = max(self.max_in_flight, self.counters["in_flight"])
            self.counters["streamed"] += streamed
            if expected and request["headers"].get("authorization") != expected:
                self.counters["bad_auth"] += 1
        started = time.perf_counter()
        try:
            return await super()._respond(request, writer)
        finally:
            with self._lock:
                self.counters["in_flight"] -= 1
                if not streamed:
                    self.served_ms.append((time.perf_counter() - started) * 1000)
            request["body"] = None


def start_llm_server(
    log_dir: Path,
    *,
    latency_ms: float = 500.0,
    ttft_ms: float = 300.0,
    tokens: int = 20,
    token_interval_ms: float = 10.0,
    api_key: str = "",
) -> harness.Server:
    """Start the project's LLM test server (tests/llm_server.py, through
    ``bench.load.llm_process``) on a free port in its own process; wait for it."""
    port = harness.free_port()
    env = {n: os.environ[n] for n in harness.PASSTHROUGH if n in os.environ}
    env["PYTHONPATH"] = str(harness.ROOT)
    cmd = [
        harness.PYTHON,
        "-m",
        "bench.load.llm_process",
        "--port",
        str(port),
        "--latency-ms",
        str(latency_ms),
        "--ttft-ms",
        str(ttft_ms),
        "--tokens",
        str(tokens),
        "--token-interval-ms",
        str(token_interval_ms),
        "--api-key",
        api_key,
    ]
    server = harness.Server(
        "llm-server", cmd, env, log_dir / "llm_server.log", port
    ).start()
    server.wait_http("/_stats", timeout=30)
    return server


def llm_server_call(
    server: harness.Server, path: str, payload: dict[str, Any] | None = None
) -> Any:
    """GET (no payload) or POST JSON to the LLM test server's control path
    (``/_stats``, ``/_reset``); return its JSON."""
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(
        server.base_url + path,
        data=data,
        headers={"Content-Type": "application/json"},
        method="GET" if data is None else "POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency-ms", type=float, default=500.0)
    parser.add_argument("--ttft-ms", type=float, default=300.0)
    parser.add_argument("--tokens", type=int, default=20)
    parser.add_argument("--token-interval-ms", type=float, default=10.0)
    parser.add_argument("--api-key", default="")
    args = parser.parse_args(argv)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    server = BenchLLMServer(
        latency_ms=args.latency_ms,
        ttft_ms=args.ttft_ms,
        tokens=args.tokens,
        token_interval_ms=args.token_interval_ms,
        api_key=args.api_key,
    )
    server.start(args.port)
    print(json.dumps({"llm_server": server.base_url}), flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
