"""A loopback OpenAI-compatible chat-completions server with latency and fault modes.

Run ``python -m bench.load.llm_stub --port N --latency-ms 500``. It answers
``POST /v1/chat/completions`` (JSON, or SSE when ``"stream": true``) with a fixed,
PHI-free reply after the configured latency, and counts what it saw (calls, streams,
context sizes: counts only, never the content). Control endpoints for tests:
``GET /_stats``, ``POST /_control`` (``{"mode": ..., "latency_ms": ...}``) and
``POST /_reset``. Modes: ``ok``, ``error`` (answer ``status``), ``hang`` (never
answer), ``bad_json`` (a 200 with an HTML body), ``cut`` (a stream cut mid-way).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

REPLY = (
    "Step counts usually arrive within 15 to 30 minutes. Open the source app once, "
    "check that background refresh is on, and make sure only one app writes steps."
)
MODES = ("ok", "error", "hang", "bad_json", "cut")


@dataclass
class StubState:
    """The stub's settings (changeable at run time) and its counters."""

    latency_ms: float = 500.0
    ttft_ms: float = 300.0
    token_interval_ms: float = 10.0
    tokens: int = 20
    mode: str = "ok"
    status: int = 500
    retry_after: str = ""
    api_key: str = ""
    calls: int = 0
    streamed: int = 0
    failed: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    bad_auth: int = 0
    max_messages: int = 0
    max_context_chars: int = 0
    # Service times of non-streamed answers, for "overhead = latency - LLM's".
    served_ms: deque[float] = field(default_factory=lambda: deque(maxlen=200_000))

    def stats(self) -> dict[str, Any]:
        served = list(self.served_ms)
        return {
            "calls": self.calls,
            "streamed": self.streamed,
            "failed": self.failed,
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "bad_auth": self.bad_auth,
            "max_messages": self.max_messages,
            "max_context_chars": self.max_context_chars,
            "served_median_ms": statistics.median(served) if served else None,
            "mode": self.mode,
            "latency_ms": self.latency_ms,
        }

    def reset(self) -> None:
        self.calls = self.streamed = self.failed = self.bad_auth = 0
        self.max_in_flight = self.in_flight
        self.max_messages = self.max_context_chars = 0
        self.served_ms.clear()


def _completion(model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": REPLY},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 100, "completion_tokens": 40, "total_tokens": 140},
    }


def _chunk(model: str, content: str | None, finish: str | None) -> bytes:
    delta = {"content": content} if content is not None else {}
    body = {
        "id": "chatcmpl-stub",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(body)}\n\n".encode()


def _record_request(state: StubState, request: web.Request, body: dict) -> None:
    state.calls += 1
    expected = f"Bearer {state.api_key}" if state.api_key else None
    if expected and request.headers.get("Authorization") != expected:
        state.bad_auth += 1
    messages = body.get("messages") or []
    state.max_messages = max(state.max_messages, len(messages))
    chars = sum(len(str(m.get("content") or "")) for m in messages)
    state.max_context_chars = max(state.max_context_chars, chars)


async def completions(request: web.Request) -> web.StreamResponse:
    state: StubState = request.app["state"]
    started = time.perf_counter()
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return web.json_response({"error": {"message": "bad request"}}, status=400)
    _record_request(state, request, body)
    state.in_flight += 1
    state.max_in_flight = max(state.max_in_flight, state.in_flight)
    try:
        return await _answer(state, request, body, started)
    finally:
        state.in_flight -= 1


async def _answer(
    state: StubState, request: web.Request, body: dict, started: float
) -> web.StreamResponse:
    model = str(body.get("model") or "stub")
    stream = bool(body.get("stream"))
    if state.mode == "hang":
        await asyncio.sleep(3600)
    if state.mode == "error":
        state.failed += 1
        await asyncio.sleep(state.ttft_ms / 1000 if stream else state.latency_ms / 1000)
        headers = {"Retry-After": state.retry_after} if state.retry_after else {}
        error = {"error": {"message": "stub failure", "type": "server_error"}}
        return web.json_response(error, status=state.status, headers=headers)
    if state.mode == "bad_json":
        state.failed += 1
        return web.Response(text="<html>oops</html>", content_type="text/html")
    if not stream:
        await asyncio.sleep(state.latency_ms / 1000)
        state.served_ms.append((time.perf_counter() - started) * 1000)
        return web.json_response(_completion(model))
    return await _stream(state, request, model, started)


async def _stream(
    state: StubState, request: web.Request, model: str, started: float
) -> web.StreamResponse:
    state.streamed += 1
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    await asyncio.sleep(state.ttft_ms / 1000)
    words = REPLY.split(" ")
    per_token = max(1, len(words) // max(state.tokens, 1))
    pieces = [
        " ".join(words[i : i + per_token]) + " "
        for i in range(0, len(words), per_token)
    ]
    for index, piece in enumerate(pieces):
        if state.mode == "cut" and index == len(pieces) // 2:
            state.failed += 1
            request.transport.close() if request.transport else None
            return response
        await response.write(_chunk(model, piece, None))
        await asyncio.sleep(state.token_interval_ms / 1000)
    await response.write(_chunk(model, None, "stop"))
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


async def stats(request: web.Request) -> web.Response:
    return web.json_response(request.app["state"].stats())


async def control(request: web.Request) -> web.Response:
    state: StubState = request.app["state"]
    changes = await request.json()
    for name in ("latency_ms", "ttft_ms", "token_interval_ms"):
        if name in changes:
            setattr(state, name, float(changes[name]))
    for name in ("tokens", "status"):
        if name in changes:
            setattr(state, name, int(changes[name]))
    if "retry_after" in changes:
        state.retry_after = str(changes["retry_after"])
    if "mode" in changes:
        if changes["mode"] not in MODES:
            return web.json_response({"error": "unknown mode"}, status=400)
        state.mode = changes["mode"]
    return web.json_response(state.stats())


async def reset(request: web.Request) -> web.Response:
    state: StubState = request.app["state"]
    state.reset()
    return web.json_response(state.stats())


def build_app(state: StubState) -> web.Application:
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app["state"] = state
    app.router.add_post("/v1/chat/completions", completions)
    app.router.add_get("/_stats", stats)
    app.router.add_post("/_control", control)
    app.router.add_post("/_reset", reset)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency-ms", type=float, default=500.0)
    parser.add_argument("--ttft-ms", type=float, default=300.0)
    parser.add_argument("--token-interval-ms", type=float, default=10.0)
    parser.add_argument("--tokens", type=int, default=20)
    parser.add_argument("--api-key", default="")
    args = parser.parse_args(argv)
    state = StubState(
        latency_ms=args.latency_ms,
        ttft_ms=args.ttft_ms,
        token_interval_ms=args.token_interval_ms,
        tokens=args.tokens,
        api_key=args.api_key,
    )
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    web.run_app(
        build_app(state),
        host=args.host,
        port=args.port,
        access_log=None,
        print=None,
        backlog=2048,
    )


if __name__ == "__main__":
    main()
