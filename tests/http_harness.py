"""The HTTP app served for real by uvicorn on 127.0.0.1, in the test's own event loop, and raw HTTP helpers."""

from __future__ import annotations

import contextlib
import json
import socket
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass

import anyio
import httpx2
import uvicorn
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client

from gpt_image_2_mcp.entrypoints.container import Container
from gpt_image_2_mcp.entrypoints.http_server import build_http_app, uvicorn_config
from gpt_image_2_mcp.entrypoints.mcp_server import build_server


def bound_socket() -> socket.socket:
    """A listening socket on a free 127.0.0.1 port, bound before the server starts: no race for the port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@dataclass
class Served:
    base: str
    container: Container

    @property
    def mcp_url(self) -> str:
        return f"{self.base}/mcp"


class _Server(uvicorn.Server):
    """uvicorn's server with an event for "listening" (it only keeps a flag)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = anyio.Event()

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets)
        self.ready.set()


@contextlib.asynccontextmanager
async def serve_http(container: Container, sock: socket.socket) -> AsyncIterator[Served]:
    """Build the server and its app as `serve --transport http` does and serve them until the block ends."""
    settings = container.settings()
    app = build_http_app(build_server(container), container)
    server = _Server(uvicorn_config(app, settings))
    async with anyio.create_task_group() as group:
        group.start_soon(lambda: server.serve(sockets=[sock]))
        await server.ready.wait()
        try:
            yield Served(f"http://127.0.0.1:{settings.http_port}", container)
        finally:
            server.should_exit = True


@contextlib.asynccontextmanager
async def client_with_token(url: str, token: str, mode: str = "legacy") -> AsyncIterator[Client]:
    """The SDK's client over streamable HTTP, sending `Authorization: Bearer <token>` with every request (the
    SDK leaves an HTTP client it was given open: closed here)."""
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"},
                                  timeout=httpx2.Timeout(30, read=300)) as http_client:
        async with Client(streamable_http_client(url, http_client=http_client), mode=mode) as client:
            yield client


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)


def http_request(url: str, method: str = "GET", body: object | None = None, headers: dict[str, str] | None = None,
                 ) -> Answer:
    """One raw HTTP request (urllib, blocking: call it through anyio.to_thread in async tests)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
        request.add_header("Accept", "application/json, text/event-stream")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return Answer(response.status, {k.lower(): v for k, v in response.headers.items()}, response.read())
    except urllib.error.HTTPError as e:
        return Answer(e.code, {k.lower(): v for k, v in e.headers.items()}, e.read())


async def http(url: str, method: str = "GET", body: object | None = None, headers: dict[str, str] | None = None,
               ) -> Answer:
    return await anyio.to_thread.run_sync(lambda: http_request(url, method, body, headers))


INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}}


class RawMcpSession:
    """MCP over streamable HTTP by hand (handshake era 2025-11-25, which serves tasks/*): for methods the SDK's
    client has no call for, and for status codes a client would hide. Blocking: use it from a worker thread
    (`await anyio.to_thread.run_sync(...)`) or through `call`."""

    def __init__(self, url: str, token: str | None = None) -> None:
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._next_id = 1

    def open(self) -> RawMcpSession:
        answer = self.post("initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                                          "clientInfo": {"name": "raw", "version": "0"}})
        assert "result" in answer, answer
        self.post_notification("notifications/initialized")
        return self

    def post(self, method: str, params: dict | None = None) -> dict:
        """One request; its JSON-RPC response (from an SSE stream or a JSON body)."""
        self._next_id += 1
        message = {"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params or {}}
        answer = http_request(self.url, "POST", message, self.headers)
        if "mcp-session-id" in answer.headers:
            self.headers["Mcp-Session-Id"] = answer.headers["mcp-session-id"]
        if "mcp-protocol-version" not in self.headers and method == "initialize":
            self.headers["Mcp-Protocol-Version"] = "2025-11-25"
        assert answer.status == 200, (answer.status, answer.body)
        return next(m for m in _messages(answer) if m.get("id") == self._next_id)

    def post_notification(self, method: str) -> None:
        answer = http_request(self.url, "POST", {"jsonrpc": "2.0", "method": method}, self.headers)
        assert answer.status == 202, (answer.status, answer.body)

    async def call(self, method: str, params: dict | None = None) -> dict:
        return await anyio.to_thread.run_sync(lambda: self.post(method, params))


def _messages(answer: Answer) -> list[dict]:
    if answer.headers.get("content-type", "").startswith("text/event-stream"):
        return [json.loads(line[5:]) for line in answer.body.decode().splitlines()
                if line.startswith("data:") and line[5:].strip()]
    return [answer.json()]
