"""A local OpenAI-compatible test server with latency and fault injection.

Serves ``POST /v1/chat/completions`` (JSON, or SSE when the body says
``"stream": true``) on 127.0.0.1 with a free port, from a background thread:

    server = LLMTestServer().start()
    server.push(Fault("status", status=429, headers={"Retry-After": "7"}), Fault())
    ... settings.GROQ_API_BASE_URL = server.base_url ...
    server.requests  # every received request: {"body": dict|None, "headers": dict}
    server.stop()

Each request takes the next scripted ``Fault`` (``push``), else the default (``set_
default``), or what ``responder(body)`` returns. Kinds: ok, echo (the reply is the
JSON of the received messages), status (any code, optional headers such as
Retry-After), html (200 text/html), json (200 with a given body: wrong shapes),
truncate (Content-Length larger than the body), cut_stream (SSE stops without
[DONE]), reset (TCP RST before any byte), reset_after_headers, slow (``delay``
before the headers; ``chunk_delay`` between SSE chunks), keepalive (SSE that only
sends ``: keep-alive`` comments, ``chunks`` of them ``chunk_delay`` apart, then
closes), long_line (SSE ``data:`` line of ``size`` bytes with no newline, then the
connection is held open ``hold`` seconds), sse (200 text/event-stream whose
``data:`` payload is ``body``, then [DONE]). A refused connection is a closed port:
``closed_port_url()``.

Run standalone for manual checks: ``python -m tests.llm_server --port 8001``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import struct
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

DEFAULT_TEXT = "Here is what to try: 1. Open the app. 2. Check permissions."


@dataclass
class Fault:
    """What the server does for one request (kind ``ok`` answers normally)."""

    kind: str = "ok"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    content: str = DEFAULT_TEXT
    delay: float = 0.0
    chunk_delay: float = 0.0
    chunks: int = 4
    usage: bool = True
    size: int = 0
    hold: float = 0.0


def closed_port_url() -> str:
    """A loopback base URL where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def _completion(content: Any, usage: bool) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "model": "test-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
    }
    if usage:
        doc["usage"] = {"prompt_tokens": 42, "completion_tokens": 17}
    return doc


def _split(text: str, parts: int) -> list[str]:
    size = max(1, -(-len(text) // max(parts, 1)))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


class LLMTestServer:
    """The server; thread-safe ``push``/``requests``; ``start()`` returns self."""

    def __init__(self) -> None:
        self.script: deque[Fault] = deque()
        self.default = Fault()
        self.responder: Callable[[dict[str, Any] | None], Fault | None] | None = None
        self.requests: list[dict[str, Any]] = []
        self.port = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    # --- control ------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def calls(self) -> int:
        with self._lock:
            return len(self.requests)

    def push(self, *faults: Fault) -> LLMTestServer:
        with self._lock:
            self.script.extend(faults)
        return self

    def set_default(self, fault: Fault) -> LLMTestServer:
        with self._lock:
            self.default = fault
        return self

    def reset(self) -> None:
        with self._lock:
            self.script.clear()
            self.requests.clear()
            self.default = Fault()
            self.responder = None

    def _next(self, body: dict[str, Any] | None) -> Fault:
        with self._lock:
            if self.script:
                return self.script.popleft()
            responder = self.responder
            default = self.default
        if responder is not None:
            chosen = responder(body)
            if chosen is not None:
                return chosen
        return default

    def start(self, port: int = 0) -> LLMTestServer:
        self._thread = threading.Thread(
            target=self._run, args=(port,), name="llm-test-server", daemon=True
        )
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5)
        self._loop = None

    def _run(self, port: int) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        server = loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", port, backlog=512)
        )
        self._server = server
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            server.close()
            # Handlers still holding a connection (slow or held faults) end here.
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(
                    asyncio.gather(*pending, return_exceptions=True)
                )
            loop.close()

    # --- HTTP -----------------------------------------------------------------------
    async def _handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            while True:
                request = await self._read_request(reader)
                if request is None:
                    break
                keep_open = await self._respond(request, writer)
                if not keep_open:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            pass
        finally:
            with contextlib.suppress(OSError):
                writer.close()

    async def _read_request(
        self, reader: asyncio.StreamReader
    ) -> dict[str, Any] | None:
        line = await reader.readline()
        if not line:
            return None
        method, path, _ = line.decode("latin-1").split(" ", 2)
        headers: dict[str, str] = {}
        while True:
            raw = await reader.readline()
            if raw in (b"\r\n", b"\n", b""):
                break
            name, _, value = raw.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0") or 0)
        payload = await reader.readexactly(length) if length else b""
        try:
            body = json.loads(payload) if payload else None
        except ValueError:
            body = None
        record = {"method": method, "path": path, "headers": headers, "body": body}
        with self._lock:
            self.requests.append(record)
        return record

    async def _respond(
        self, request: dict[str, Any], writer: asyncio.StreamWriter
    ) -> bool:
        body = request["body"] if isinstance(request["body"], dict) else None
        fault = self._next(body)
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.kind == "reset":
            _rst(writer)
            return False
        if fault.kind == "status":
            doc = fault.body if fault.body is not None else {"error": {"message": "x"}}
            return await _send(writer, fault.status, doc, fault.headers)
        if fault.kind == "html":
            page = b"<html><body>Bad gateway</body></html>"
            return await _send(writer, 200, page, {"Content-Type": "text/html"})
        if fault.kind == "json":
            return await _send(writer, 200, fault.body, fault.headers)
        if fault.kind == "truncate":
            head = _head(
                200, {"Content-Type": "application/json", "Content-Length": "900"}
            )
            writer.write(head + b'{"choices": [{"message": {"con')
            await writer.drain()
            return False
        if fault.kind == "reset_after_headers":
            writer.write(
                _head(
                    200, {"Content-Type": "application/json", "Content-Length": "500"}
                )
            )
            await writer.drain()
            await asyncio.sleep(0.01)
            _rst(writer)
            return False
        if fault.kind in ("keepalive", "long_line", "sse"):
            await _special_stream(writer, fault)
            return False
        content: Any = fault.content
        if fault.kind == "echo":
            content = json.dumps((body or {}).get("messages", []))
        if body is not None and body.get("stream"):
            await self._stream(writer, str(content), fault)
            return False
        return await _send(
            writer, 200, _completion(content, fault.usage), fault.headers
        )

    async def _stream(
        self, writer: asyncio.StreamWriter, text: str, fault: Fault
    ) -> None:
        writer.write(
            _head(200, {"Content-Type": "text/event-stream", "Connection": "close"})
        )
        pieces = _split(text, fault.chunks)
        if fault.kind == "cut_stream":
            pieces = pieces[: max(1, len(pieces) // 2)]
        for piece in pieces:
            event = {"choices": [{"index": 0, "delta": {"content": piece}}]}
            writer.write(f"data: {json.dumps(event)}\n\n".encode())
            await writer.drain()
            if fault.chunk_delay:
                await asyncio.sleep(fault.chunk_delay)
        if fault.kind == "cut_stream":
            return
        if fault.usage:
            tail = {
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 42, "completion_tokens": 17},
            }
            writer.write(f"data: {json.dumps(tail)}\n\n".encode())
        writer.write(b"data: [DONE]\n\n")
        await writer.drain()


async def _special_stream(writer: asyncio.StreamWriter, fault: Fault) -> None:
    writer.write(
        _head(200, {"Content-Type": "text/event-stream", "Connection": "close"})
    )
    if fault.kind == "keepalive":
        for _ in range(fault.chunks):
            writer.write(b": keep-alive\n\n")
            await writer.drain()
            await asyncio.sleep(fault.chunk_delay)
        return
    if fault.kind == "sse":
        payload = fault.body if isinstance(fault.body, str) else json.dumps(fault.body)
        writer.write(f"data: {payload}\n\ndata: [DONE]\n\n".encode())
        await writer.drain()
        return
    writer.write(b"data: ")
    left = fault.size
    while left > 0:
        step = min(left, 65536)
        writer.write(b"x" * step)
        await writer.drain()
        left -= step
    await asyncio.sleep(fault.hold)


def _head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} X"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _send(
    writer: asyncio.StreamWriter, status: int, doc: Any, headers: dict[str, str]
) -> bool:
    payload = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    merged = {"Content-Type": "application/json", **headers}
    merged["Content-Length"] = str(len(payload))
    writer.write(_head(status, merged) + payload)
    await writer.drain()
    return True


def _rst(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--chunk-delay", type=float, default=0.05)
    args = parser.parse_args()
    server = LLMTestServer()
    server.set_default(Fault(delay=args.delay, chunk_delay=args.chunk_delay))
    server.start(args.port)
    print(f"LLM test server on {server.base_url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
