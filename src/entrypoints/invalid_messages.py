"""A body that is JSON but not a JSON-RPC message, told over HTTP as on stdio.

The SDK's streamable HTTP transport answers it with "Validation error: " and pydantic's whole report (model
names, input values, links to pydantic's site) under -32602. This middleware puts the one line stdio gives in
its place, with -32600 (invalid request), as JSON-RPC says."""

from __future__ import annotations

import json
from typing import Any

from mcp.types import INVALID_REQUEST
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .protocol_errors import NOT_JSON_RPC

SDK_PREFIX = "Validation error: "
"""How the SDK's transport begins its answer to such a body (mcp/server/streamable_http.py)."""


class ExplainedInvalidMessages:
    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self._app(scope, receive, send)
            return
        held: list[Message] = []

        async def reworded(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 400:
                held.append(message)  # the body decides: hold the head until it comes
                return
            if held and message["type"] == "http.response.body":
                start, body = _reworded(held.pop(), message.get("body", b""))
                await send(start)
                await send({**message, "body": body})
                return
            await send(message)

        await self._app(scope, receive, reworded)


def _reworded(start: Message, body: bytes) -> tuple[Message, bytes]:
    """The response as it was, or, if it is the SDK's validation dump, with our line and code in its place."""
    try:
        answer: Any = json.loads(body)
        error = answer["error"]
        if not str(error.get("message", "")).startswith(SDK_PREFIX):
            return start, body
    except (ValueError, KeyError, TypeError, AttributeError):
        return start, body
    answer["error"] = {"code": INVALID_REQUEST, "message": NOT_JSON_RPC}
    new_body = json.dumps(answer).encode()
    headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
    headers.append((b"content-length", str(len(new_body)).encode()))
    return {**start, "headers": headers}, new_body
