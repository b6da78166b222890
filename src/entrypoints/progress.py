"""Progress for long tool calls: each step the use case reports, plus heartbeats while the API works.

Clients reset their tool-call timeout on progress, so a heartbeat every few seconds keeps a minutes-long
high-quality image alive. Nothing at all is sent when the caller gave no progress token.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
from mcp.server.mcpserver import Context

from gpt_image_2_mcp.domain.ports import ProgressReporter
from gpt_image_2_mcp.domain.services import no_progress

log = logging.getLogger(__name__)
T = TypeVar("T")
STEP_AFTER_BEATS = 0.01
"""How far above the last heartbeat a late step is sent."""


def progress_token(ctx: Context) -> Any:
    meta = ctx.request_context.meta or {}
    if isinstance(meta, dict):
        return meta.get("progress_token", meta.get("progressToken"))
    return getattr(meta, "progress_token", None)


class HeartbeatReporter:
    """Forwards steps to the client and, between steps, sends heartbeats that creep towards the next step."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._progress = 0.0
        self._total: float | None = None
        self._message = "working"
        self._beats = 0
        self._sent = -1.0
        """The last progress sent: every notification must be above it (MCP), a step after heartbeats too."""

    async def report(self, progress: float, total: float | None, message: str) -> None:
        # Heartbeats may have crept past a step that comes late (the first step after a slow start, or after
        # the user took a while to confirm the cost): that step is sent just above them, never below.
        progress = max(progress, self._sent + STEP_AFTER_BEATS)
        self._progress, self._total, self._message, self._beats = progress, total, message, 0
        await self._send(progress, total, message)

    async def _send(self, progress: float, total: float | None, message: str) -> None:
        self._sent = progress
        await self._ctx.report_progress(progress, total, message)

    async def beat_every(self, interval_s: float) -> None:
        waited = 0.0
        while True:
            await anyio.sleep(interval_s)
            waited += interval_s
            if self._total is not None and self._progress >= self._total:
                continue  # the last step was reported: what is left is short, and progress must not pass total
            self._beats += 1
            # Progress must increase with every notification: creep towards, never reach, the next step (the
            # steps are whole numbers; one sent late, above the beats before it, may not be).
            gap = math.floor(self._progress) + 1 - self._progress
            creep = gap * 0.9 * self._beats / (self._beats + 1)
            try:
                await self._send(self._progress + creep, self._total, f"{self._message} ({waited:.0f}s elapsed)")
            except Exception as e:  # a client gone away must not fail the call it is waiting for
                log.debug("heartbeat not sent: %s", type(e).__name__)


async def with_progress(
    ctx: Context, heartbeat_s: float, work: Callable[[ProgressReporter], Awaitable[T]]
) -> T:
    """Run `work` with a progress reporter. Its errors come out as themselves, never wrapped in a group."""
    if progress_token(ctx) is None:
        return await work(no_progress)
    reporter = HeartbeatReporter(ctx)
    failure: Exception | None = None
    async with anyio.create_task_group() as group:
        group.start_soon(reporter.beat_every, heartbeat_s)
        try:
            result = await work(reporter.report)
        except Exception as e:
            # Raised outside the task group: inside it, the error would arrive as an ExceptionGroup that no
            # `except ImageServerError` matches, and the caller would lose the message.
            failure = e
        finally:
            group.cancel_scope.cancel()
    if failure is not None:
        raise failure
    return result
