"""Start importing the OpenAI SDK once the client's first message has been handled.

The import (~0.25 s of CPU, holding the GIL most of that time) started with the lifespan would compete with the
handshake it is meant to hide behind; started after the first message (`initialize`, or `server/discover` on the
2026-07-28 era) it runs while the client gets ready for its first call. A call that comes sooner starts (or
joins) the import itself, through the container.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerMiddleware, ServerRequestContext


class WarmUpAfterFirstMessage(ServerMiddleware[Any]):
    """Calls `start` once, right after the first inbound message was handled (whatever its outcome)."""

    def __init__(self, start: Callable[[], object]) -> None:
        self._start: Callable[[], object] | None = start

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        try:
            return await call_next(ctx)
        finally:
            if self._start is not None:
                start, self._start = self._start, None
                start()
