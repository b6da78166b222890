"""Raw JSON-RPC over streamable HTTP, as a client without an MCP SDK speaks it: `initialize` once, then every
request with the `MCP-Protocol-Version` header and, if the server issued one, its `Mcp-Session-Id`. Answers may
come as JSON or as an SSE stream (the reply plus the notifications sent before it). Blocking (urllib): call it
through anyio.to_thread from async tests."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

PROTOCOL = "2025-11-25"
TIMEOUT_S = 60.0


class RpcError(Exception):
    """The server answered a request with a JSON-RPC error (or an HTTP error without one)."""

    def __init__(self, status: int, error: dict[str, Any]) -> None:
        super().__init__(f"HTTP {status}: {error.get('message')} ({error.get('code')})")
        self.status = status
        self.error = error


@dataclass
class Reply:
    result: dict[str, Any]
    notifications: list[dict[str, Any]]
    served_by: str | None
    """HAProxy's X-Served-By header: which replica answered (None when the request went to one directly)."""


def sse_messages(body: str) -> list[dict[str, Any]]:
    """The JSON-RPC messages of an SSE body (events without data, such as priming events, are skipped)."""
    messages = []
    for event in body.replace("\r\n", "\n").split("\n\n"):
        data = "\n".join(line[5:].lstrip() for line in event.split("\n") if line.startswith("data:"))
        if data.strip():
            messages.append(json.loads(data))
    return messages


@dataclass
class RawMcpSession:
    """One client's conversation with one endpoint (a replica, or the load balancer)."""

    url: str
    protocol: str = PROTOCOL
    session_id: str | None = None
    _next_id: int = field(default=0, init=False)

    def initialize(self) -> dict[str, Any]:
        """The handshake; keeps the Mcp-Session-Id a stateful server issues (a stateless one issues none)."""
        reply = self.request("initialize", {"protocolVersion": self.protocol, "capabilities": {},
                                            "clientInfo": {"name": "raw-http", "version": "0"}})
        self.notify("notifications/initialized")
        return reply.result

    def request(self, method: str, params: dict[str, Any] | None = None) -> Reply:
        self._next_id += 1
        message = {"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params or {}}
        status, headers, body = self._post(message)
        if "text/event-stream" in headers.get("content-type", ""):
            messages = sse_messages(body)
        else:
            messages = [json.loads(body)] if body.strip() else []
        # A transport-level refusal (unknown session, bad header) is an error with a null id.
        replies = [m for m in messages if m.get("id") == self._next_id] or [m for m in messages if "error" in m]
        if not replies:
            raise RpcError(status, {"message": f"no reply in the answer: {body[:500]!r}"})
        if "error" in replies[0]:
            raise RpcError(status, replies[0]["error"])
        notifications = [m for m in messages if "id" not in m]
        return Reply(replies[0]["result"], notifications, headers.get("x-served-by"))

    def call_tool(self, name: str, arguments: dict[str, Any], **params: Any) -> Reply:
        return self.request("tools/call", {"name": name, "arguments": arguments, **params})

    def notify(self, method: str) -> None:
        self._post({"jsonrpc": "2.0", "method": method})

    def _post(self, message: dict[str, Any]) -> tuple[int, dict[str, str], str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        if message.get("method") != "initialize":
            headers["MCP-Protocol-Version"] = self.protocol
        if self.session_id:
            headers["Mcp-Session-Id"] = self.session_id
        request = urllib.request.Request(self.url, json.dumps(message).encode(), headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                status, answer, body = response.status, response.headers, response.read().decode()
        except urllib.error.HTTPError as e:
            status, answer, body = e.code, e.headers, e.read().decode(errors="replace")
            if "id" not in message or not body.strip().startswith("{"):
                raise RpcError(status, {"message": body[:500]}) from None
        lowered = {k.lower(): v for k, v in answer.items()}
        if message.get("method") == "initialize" and lowered.get("mcp-session-id"):
            self.session_id = lowered["mcp-session-id"]
        return status, lowered, body
