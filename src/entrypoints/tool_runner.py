"""What every image tool does around its use case: roots, progress, errors in the server's voice, the result."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp.types import CallToolResult, ImageContent, ResourceLink, TextContent

from gpt_image_2_mcp.adapters.redaction import scrub, scrub_all
from gpt_image_2_mcp.domain.errors import ImageServerError
from gpt_image_2_mcp.domain.ports import ProgressReporter
from gpt_image_2_mcp.domain.services import Outcome, Placement

from .image_resources import announce_new_images
from .owners import owner_of
from .presentation import Presenter
from .progress import with_progress
from .settings import Settings
from .tool_arguments import placement, requested

log = logging.getLogger(__name__)

UseCaseCall = Callable[[Placement, ProgressReporter], Awaitable[Outcome]]


class ToolRunner:
    """Runs one image tool call from its arguments to a CallToolResult."""

    def __init__(self, settings: Settings, presenter: Presenter) -> None:
        self._settings = settings
        self._presenter = presenter

    def error(self, error: ImageServerError) -> ToolError:
        """A domain error as a tool error the caller reads; never with a secret in it."""
        return ToolError(scrub(str(error), self._settings.secrets))

    async def run(self, ctx: Context, arguments: Mapping[str, Any], call: UseCaseCall) -> CallToolResult:
        try:
            where = placement(arguments, await self.roots(ctx), owner_of(ctx))
            outcome = await with_progress(ctx, self._settings.heartbeat_s, lambda report: call(where, report))
        except ImageServerError as e:
            raise self.error(e) from None
        await announce_new_images(ctx)
        return await self.present(outcome, arguments)

    async def roots(self, ctx: Context) -> tuple[str, ...] | None:
        """The client's roots, when it offers them on the handshake era and enforcement is on."""
        if not self._settings.enforce_roots:
            return None
        capabilities = ctx.client_capabilities
        if capabilities is None or capabilities.roots is None:
            return None
        try:
            with warnings.catch_warnings():
                # Roots are deprecated in the 2026-07-28 era; on the handshake era they are what we have.
                warnings.simplefilter("ignore", MCPDeprecationWarning)
                result = await ctx.session.list_roots()
        except Exception as e:  # no back channel (2026-07-28 era) or a client that fails the request
            log.debug("roots unavailable: %s", type(e).__name__)
            return None
        return tuple(str(root.uri) for root in result.roots) or None

    async def present(self, outcome: Outcome, arguments: Mapping[str, Any]) -> CallToolResult:
        try:
            blocks, previews, notes = await anyio.to_thread.run_sync(
                self._presenter.inline_images, outcome.images, arguments.get("inline", "preview"), outcome.contents)
        except Exception as e:  # the files are saved; a failed preview must not turn that into an error
            log.exception("inline preview failed")
            blocks, previews = [], [None] * len(outcome.images)
            notes = [f"No inline preview ({type(e).__name__}); the files on disk are complete."]
        infos = [self._presenter.image_info(image, preview)
                 for image, preview in zip(outcome.images, previews, strict=True)]
        secrets = self._settings.secrets
        # Everything outward passes the scrubber, values the API echoed back included.
        text = scrub(self._presenter.text(outcome, infos, notes), secrets)
        output = self._presenter.structured(outcome, infos, notes, requested(arguments))
        content: list[Any] = [TextContent(type="text", text=text)]
        content += [ImageContent(type="image", data=data, mime_type=mime) for data, mime in blocks]
        content += [
            ResourceLink(type="resource_link", name=info.filename, uri=info.uri, mime_type=info.mime_type,
                         size=info.size_bytes, description=f"{info.width}x{info.height} full-resolution image")
            for info in infos
        ]
        return CallToolResult(content=content, structured_content=scrub_all(output.model_dump(mode="json"), secrets))
