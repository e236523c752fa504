"""Calling an ASGI application as uvicorn does (tests of the ASGI handler, bench_turn).

One scope, the body, then a disconnect only once the response is complete; the
cookies the responses set are kept and sent back, as a browser would.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any


@dataclass
class Response:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def header(self, name: str) -> str:
        wanted = name.lower().encode()
        return next((v.decode() for k, v in self.headers if k.lower() == wanted), "")


@dataclass
class AsgiBrowser:
    app: Any
    cookies: dict[str, str] = field(default_factory=dict)

    def get(self, path: str) -> Response:
        return asyncio.run(self.request("GET", path))

    def post_form(self, path: str, form: str, **headers: str) -> Response:
        extra = {"content-type": "application/x-www-form-urlencoded", **headers}
        return asyncio.run(self.request("POST", path, form.encode(), extra))

    async def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
    ) -> Response:
        sent: list[tuple[bytes, bytes]] = [(b"host", b"testserver")]
        sent += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
        sent.append((b"content-length", str(len(body)).encode()))
        if self.cookies:
            jar = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
            sent.append((b"cookie", jar.encode()))
        response = await asgi_call(self.app, asgi_scope(method, path, sent), body)
        for name, value in response.headers:
            if name.lower() == b"set-cookie":
                for morsel in SimpleCookie(value.decode()).values():
                    self.cookies[morsel.key] = morsel.value
        return response


def asgi_scope(
    method: str,
    path: str,
    headers: list[tuple[bytes, bytes]],
    server: tuple[str, int] = ("testserver", 80),
) -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": server,
    }


async def asgi_call(app: Any, scope: dict, body: bytes) -> Response:
    """One request: the body, then a disconnect once the response is complete."""
    done = asyncio.Event()
    response = Response(0, [], b"")
    sent_body = False

    async def receive() -> dict[str, Any]:
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": body, "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            response.status = int(message["status"])
            response.headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            response.body += message.get("body", b"")
            if not message.get("more_body", False):
                done.set()

    await app(scope, receive, send)
    done.set()
    return response


async def post_message(
    app: Any,
    token: str,
    conversation: int,
    key: str,
    text: str = "my steps aren't syncing",
) -> tuple[int, Any]:
    """POST a chat message with a token and an idempotency key: (status, JSON)."""
    body = json.dumps({"text": text}).encode()
    headers = [
        (b"host", b"testserver"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"authorization", f"Token {token}".encode()),
        (b"idempotency-key", key.encode()),
    ]
    path = f"/api/conversations/{conversation}/messages/"
    response = await asgi_call(app, asgi_scope("POST", path, headers), body)
    return response.status, json.loads(response.body)
