"""The use cases as the tools reach them: resolved from the container on first use, asynchronously."""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any

import anyio
from dependency_injector import providers

from gpt_image_2_mcp.domain.edit_sessions import EditSessions
from gpt_image_2_mcp.domain.errors import ImageServerError
from gpt_image_2_mcp.domain.image_library import ImageLibrary
from gpt_image_2_mcp.domain.job_runner import JobRunner
from gpt_image_2_mcp.domain.ports import ImageSource
from gpt_image_2_mcp.domain.services import EditImage, GenerateImage

from .container import Container

log = logging.getLogger(__name__)


async def resolve(provider: providers.Provider[Any]) -> Any:
    """What a provider provides, whether it builds it at once or (through an async resource) as an awaitable."""
    provided = provider()
    if not inspect.isawaitable(provided):
        return provided
    # Shielded: the future is shared by every caller and cached by the container, so one cancelled call must
    # not cancel it for all the others (it would stay cancelled in the cache). asyncio.shield, not an anyio
    # shielded scope: a job is cancelled with Task.cancel(), which such a scope does not hold back.
    return await asyncio.shield(provided)


class UseCases:
    """Resolving the OpenAI backend imports its SDK off the event loop (an async resource), so a use case may
    arrive as an awaitable; after the first call each is a cached singleton."""

    def __init__(self, container: Container) -> None:
        self._container = container
        self._job_runner: JobRunner | None = None

    async def generate(self) -> GenerateImage:
        return await resolve(self._container.generate_image)

    async def edit(self) -> EditImage:
        return await resolve(self._container.edit_image)

    async def sessions(self) -> EditSessions:
        return await resolve(self._container.edit_sessions)

    async def jobs(self) -> JobRunner:
        self._job_runner = await resolve(self._container.job_runner)
        return self._job_runner

    async def source(self) -> ImageSource:
        return await resolve(self._container.image_source)

    async def library(self) -> ImageLibrary:
        return await resolve(self._container.image_library)

    def running_jobs(self) -> int:
        """Jobs running in this process (0 before the job runner was made)."""
        return self._job_runner.running_count if self._job_runner is not None else 0

    async def sweep_jobs_every(self, interval_s: float) -> None:
        """Forget expired jobs (and MCP tasks) now and then; a store that fails is tried again next time."""
        while True:
            await anyio.sleep(interval_s)
            try:
                await (await self.jobs()).sweep()
            except ImageServerError as e:
                log.warning("could not sweep expired jobs: %s", e)

    async def finish_jobs(self) -> None:
        """Wait for the jobs still running in this process, if the job runner was ever made."""
        if self._job_runner is not None:
            await self._job_runner.finish_running()

    async def stop_jobs(self, failure: str | None = None) -> None:
        """Cancel the jobs still running in this process, if the job runner was ever made (`failure`: record them
        as failed with it, not as cancelled)."""
        if self._job_runner is not None:
            await self._job_runner.stop_all(failure)


async def shut_down(container: Container) -> None:
    """Close what the container opened (the SDK client, the SQLite file); nothing that was never opened. Writes
    the state store refused earlier get their last try first, while it is still open."""
    await container.store_backlog().finish()
    closing = container.shutdown_resources()
    if inspect.isawaitable(closing):
        await closing
