"""The use cases as the tools reach them: resolved from the container on first use, asynchronously."""

from __future__ import annotations

import inspect
from typing import Any

import anyio
from dependency_injector import providers

from gpt_image_2_mcp.domain.edit_sessions import EditSessions
from gpt_image_2_mcp.domain.image_library import ImageLibrary
from gpt_image_2_mcp.domain.services import EditImage, GenerateImage

from .container import Container


async def resolve(provider: providers.Provider[Any]) -> Any:
    """What a provider provides, whether it builds it at once or (through an async resource) as an awaitable."""
    provided = provider()
    if not inspect.isawaitable(provided):
        return provided
    # Shielded: the future is shared by every caller and cached by the container, so one cancelled call must
    # not cancel it for all the others (it would stay cancelled in the cache).
    with anyio.CancelScope(shield=True):
        return await provided


class UseCases:
    """Resolving the OpenAI backend imports its SDK off the event loop (an async resource), so a use case may
    arrive as an awaitable; after the first call each is a cached singleton."""

    def __init__(self, container: Container) -> None:
        self._container = container

    async def generate(self) -> GenerateImage:
        return await resolve(self._container.generate_image)

    async def edit(self) -> EditImage:
        return await resolve(self._container.edit_image)

    async def sessions(self) -> EditSessions:
        return await resolve(self._container.edit_sessions)

    async def library(self) -> ImageLibrary:
        return await resolve(self._container.image_library)


async def shut_down(container: Container) -> None:
    """Close what the container opened (the SDK client, the SQLite file); nothing that was never opened."""
    closing = container.shutdown_resources()
    if inspect.isawaitable(closing):
        await closing
