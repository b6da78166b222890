"""Requests too large for the server, told as a JSON-RPC error a client can act on.

The SDK refuses a body above its limit with a bare "Request body too large" (plain text, 413). A remote user's
only way to send a local image is a data: URL in the body, so the limit is what they meet first; this middleware
answers a declared length above it with the size, the limit and what to send instead. (A body without a
declared length is counted by the SDK, which keeps its bare answer.)"""

from __future__ import annotations

import json
from typing import Any

from mcp.types import INVALID_REQUEST
from starlette.types import ASGIApp, Receive, Scope, Send

MIB = 1024 * 1024
DRAINED_AT_MOST = 1024 * MIB
"""A refused body up to this size is read (and dropped) before the answer: a client that is still sending when
the server answers and closes sees a broken connection instead of the answer."""


class ExplainedBodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self._app = app
        self._max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = _content_length(scope) if scope["type"] == "http" and scope["method"] == "POST" else None
        if declared is None or declared <= self._max_bytes:
            await self._app(scope, receive, send)
            return
        if declared <= DRAINED_AT_MOST:
            await _drain(receive)
        await _refuse(send, too_large(declared, self._max_bytes))


def too_large(size: int, limit: int) -> str:
    return (f"The request is {size / MIB:.1f} MiB; this server takes requests of at most {limit / MIB:.0f} MiB. "
            "Send fewer or smaller images: a JPEG or WEBP data: URL is far smaller than a PNG, an image this "
            "server made can be named by its image:// link, and a public https URL is fetched by the server.")


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _drain(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


async def _refuse(send: Send, message: str) -> None:
    body = json.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": INVALID_REQUEST, "message": message}})
    headers: list[Any] = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                          (b"connection", b"close")]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body.encode()})
