"""Stdin closing means the client will send nothing more, not that it stopped listening.

A pipe (`printf '...' | gpt-image-2-mcp`, a script, a test harness) closes stdin right after its last request
and still reads every answer from stdout. The SDK ends the connection at stdin's EOF and cancels the handlers
still running, so those answers were lost, a quick `tools/list` as much as a paid call. Here the EOF is held
back from the SDK until every request read has been answered (or cancelled by the client). The wait ends early
when a handler asks the client something (roots, elicitation): no answer can come over a closed stdin, and the
SDK's own EOF handling is what releases such a handler. A client that wants the server gone sooner sends
SIGTERM, as the MCP lifecycle says it will after closing stdin.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import anyio
from mcp.shared.message import SessionMessage
from mcp_types import JSONRPCError, JSONRPCNotification, JSONRPCRequest, JSONRPCResponse

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
    """The SDK's read stream, noting each request, and ending only once the exchange has been answered."""

    @property
    def last_context(self) -> Any:  # the sender's context, which the SDK reads off its context-aware stream
        return getattr(self._inner, "last_context", None)

    async def receive(self) -> Any:
        try:
            item = await self._inner.receive()
        except anyio.EndOfStream:
            await self._exchange.answered()
            raise
        self._exchange.read(item)
        return item

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


def answering_streams(read_stream: Any, write_stream: Any) -> tuple[AnsweringReads, AnsweringWrites]:
    exchange = Exchange()
    return AnsweringReads(read_stream, exchange), AnsweringWrites(write_stream, exchange)
