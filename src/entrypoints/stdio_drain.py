"""The stdio exchange: stdin closing means the client will send nothing more, not that it stopped listening;
and a line that is not a JSON-RPC message gets the JSON-RPC error it asks for.

A pipe (`printf '...' | gpt-image-2-mcp`, a script, a test harness) closes stdin right after its last request
and still reads every answer from stdout. The SDK ends the connection at stdin's EOF and cancels the handlers
still running, so those answers were lost, a quick `tools/list` as much as a paid call. Here the EOF is held
back from the SDK until every request read has been answered (or cancelled by the client). The wait ends early
when a handler asks the client something (roots, elicitation): no answer can come over a closed stdin, and the
SDK's own EOF handling is what releases such a handler. A client that wants the server gone sooner sends
SIGTERM, as the MCP lifecycle says it will after closing stdin.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any

import anyio
from mcp.shared.message import SessionMessage
from mcp_types import (
    INVALID_REQUEST,
    PARSE_ERROR,
    ErrorData,
    JSONRPCError,
    JSONRPCNotification,
    JSONRPCRequest,
    JSONRPCResponse,
)
from mcp_types.methods import SPEC_CLIENT_METHODS
from pydantic import ValidationError

from .protocol_errors import NOT_JSON_RPC

log = logging.getLogger(__name__)

CANCELLED = "notifications/cancelled"


class Exchange:
    """The requests the client sent that have no answer yet, and the server's own requests to the client."""

    def __init__(self) -> None:
        self._unanswered: set[Any] = set()
        self._asking: set[Any] = set()
        self._changed = anyio.Event()

    def read(self, item: object) -> None:
        message = item.message if isinstance(item, SessionMessage) else None
        if isinstance(message, JSONRPCRequest):
            self._unanswered.add(message.id)
        elif isinstance(message, JSONRPCNotification) and message.method == CANCELLED:
            self._settle(self._unanswered, (message.params or {}).get("requestId"))
        elif isinstance(message, JSONRPCResponse | JSONRPCError):
            self._settle(self._asking, message.id)

    def written(self, item: SessionMessage) -> None:
        message = item.message
        if isinstance(message, JSONRPCRequest):
            self._asking.add(message.id)
            self._announce()
        elif isinstance(message, JSONRPCResponse | JSONRPCError):
            self._settle(self._unanswered, message.id)

    async def answered(self) -> None:
        """Wait until no request is left unanswered, or until the server waits on the client itself."""
        while self._unanswered and not self._asking:
            changed = self._changed
            await changed.wait()

    def _settle(self, pending: set[Any], request_id: Any) -> None:
        pending.discard(request_id)
        self._announce()

    def _announce(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()


class _Wrapped:
    """One of the SDK's streams with the exchange beside it; closing is the stream's own."""

    def __init__(self, inner: Any, exchange: Exchange) -> None:
        self._inner = inner
        self._exchange = exchange

    def close(self) -> None:
        self._inner.close()

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        await self.aclose()


class AnsweringReads(_Wrapped):
    """The SDK's read stream, noting each request, and ending only once the exchange has been answered. A line
    that is not a JSON-RPC message is answered here, as JSON-RPC asks: the SDK only notes it at debug level, and
    the client waited for ever."""

    def __init__(self, inner: Any, exchange: Exchange, answer: Any) -> None:
        super().__init__(inner, exchange)
        self._answer = answer

    @property
    def last_context(self) -> Any:  # the sender's context, which the SDK reads off its context-aware stream
        return getattr(self._inner, "last_context", None)

    async def receive(self) -> Any:
        try:
            item = await self._inner.receive()
        except anyio.EndOfStream:
            await self._exchange.answered()
            raise
        if isinstance(item, ValidationError):
            await self._refuse(item)
        elif isinstance(item, SessionMessage) and _request_without_id(item.message):
            await self._send_refusal(INVALID_REQUEST, None, (
                f"Invalid request: {item.message.method} was sent without a usable id (an integer or a string), "
                "so it reads as a notification and no answer could reach you. Send it with an id."))
        self._exchange.read(item)
        return item

    async def _refuse(self, error: ValidationError) -> None:
        sent = next((e["input"] for e in error.errors() if isinstance(e.get("input"), dict)), None)
        if error.errors() and error.errors()[0]["type"] == "json_invalid":
            code, message, request_id = PARSE_ERROR, "Parse error: the line is not JSON.", None
        else:
            request_id = sent.get("id") if isinstance(sent, dict) else None
            request_id = request_id if isinstance(request_id, int | str) else None
            code, message = INVALID_REQUEST, NOT_JSON_RPC
        await self._send_refusal(code, request_id, message)

    async def _send_refusal(self, code: int, request_id: int | str | None, message: str) -> None:
        log.warning("refused a line on stdin: %s", message)
        reply = JSONRPCError(jsonrpc="2.0", id=request_id, error=ErrorData(code=code, message=message))
        await self._answer(SessionMessage(reply))

    def __aiter__(self) -> AnsweringReads:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None


class AnsweringWrites(_Wrapped):
    """The SDK's write stream, noting each answer and each request to the client."""

    async def send(self, item: SessionMessage) -> None:
        try:
            await self._inner.send(item)
        finally:  # sent, or it never will be (stdout gone): either way nothing more to wait for
            self._exchange.written(item)


def _request_without_id(message: Any) -> bool:
    """A request method parsed as a notification: its id was null, fractional or otherwise not an id, which the
    parser drops, and the SDK then ignores the "notification" without a word."""
    return isinstance(message, JSONRPCNotification) and message.method in SPEC_CLIENT_METHODS


def answering_streams(read_stream: Any, write_stream: Any) -> tuple[AnsweringReads, AnsweringWrites]:
    exchange = Exchange()
    return AnsweringReads(read_stream, exchange, write_stream.send), AnsweringWrites(write_stream, exchange)
