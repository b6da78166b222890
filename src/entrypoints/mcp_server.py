"""The MCP tool surface: six tools registered as closures over use cases from the container."""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import logging
import sys
import threading
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.resources import FileResource
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp.types import CallToolResult, ImageContent, ResourceLink, TextContent, ToolAnnotations
from pydantic import Field

from gpt_image_2_mcp import __version__
from gpt_image_2_mcp.adapters.redaction import scrub
from gpt_image_2_mcp.domain.errors import ImageServerError
from gpt_image_2_mcp.domain.services import EditImage, EditSessions, GenerateImage, Outcome, Placement
from gpt_image_2_mcp.domain.values import (
    MAX_EDIT_INPUTS,
    SIZE_RULES,
    Background,
    GenerationRequest,
    ImageSize,
    Moderation,
    OutputFormat,
    Quality,
    RenderOptions,
)

from .container import Container
from .presentation import (
    EndSessionOutput,
    ImageToolOutput,
    InlineMode,
    Presenter,
    SessionListOutput,
    UsageInfo,
    session_info,
)

log = logging.getLogger(__name__)
OPENAI_ADAPTER = "gpt_image_2_mcp.adapters.openai_images_backend"

Prompt = Annotated[str, Field(description="What to draw or change, in plain language (1..32,000 characters).")]
Size = Annotated[str, Field(description="'auto', 1024x1024, 1536x1024 (landscape), 1024x1536 (portrait), or a "
                                         "custom WxH: edges multiples of 16, max 3840, ratio 1:3..3:1, "
                                         "655,360..8,294,400 pixels (e.g. 3840x2160).")]
QualityArg = Annotated[Literal["auto", "low", "medium", "high"],
                       Field(description="Rendering quality; higher is slower and costs more.")]
N = Annotated[int, Field(ge=1, le=10, description="How many images to make (1..10).")]
BackgroundArg = Annotated[Literal["auto", "opaque", "transparent"], Field(
    description="'auto' or 'opaque'. 'transparent' is passed on, but many deployments refuse it for gpt-image-2.")]
FormatArg = Annotated[Literal["png", "jpeg", "webp"], Field(description="File format of the saved image.")]
Compression = Annotated[int | None, Field(ge=0, le=100, description="0..100, jpeg and webp only.")]
ModerationArg = Annotated[Literal["auto", "low"], Field(description="Content moderation strictness.")]
OutputDir = Annotated[str | None, Field(description="Folder to save into (absolute, ~, relative to the server's "
                                                    "working directory, or file://). Default: the server's folder.")]
Prefix = Annotated[str | None, Field(description="Filename prefix, e.g. 'logo' -> logo-20261124-150301-a1b2c3.png.")]
User = Annotated[str | None, Field(description="Stable end-user id for OpenAI abuse monitoring (safety_identifier).")]
Inline = Annotated[Literal["preview", "full", "none"], Field(
    description="How the image appears in the result: 'preview' (downscaled, default), 'full' (original bytes when "
                "small enough, else a preview) or 'none' (paths and links only).")]
Partials = Annotated[int, Field(ge=0, le=3, description="Stream 0..3 partial images as progress steps (n=1 only; "
                                                         "each costs ~100 extra output tokens).")]
SavePartials = Annotated[bool, Field(description="Also save partial images to disk.")]
Images = Annotated[list[str], Field(min_length=1, max_length=MAX_EDIT_INPUTS, description=(
    "1..16 reference images: absolute or relative paths, file:// URLs, http(s):// URLs or "
    "data:image/...;base64 URLs. PNG, JPEG or WEBP, each under 50 MB. The first is the one edited."))]
Mask = Annotated[str | None, Field(description="Optional PNG mask with an alpha channel, the size of the first "
                                               "image; transparent pixels mark where to edit. Under 4 MB.")]
SessionId = Annotated[str, Field(description="The session_id from start_edit_session or list_edit_sessions.")]

INSTRUCTIONS = f"""Generate and edit images with OpenAI gpt-image-2.
- generate_image: text to image. edit_image: edit or compose 1..16 reference images (optional mask).
- For several rounds of changes on one picture, use start_edit_session, then continue_edit_session
  (from_turn branches from an earlier turn); end_edit_session when done; list_edit_sessions to find one.
- Every image is saved to disk in full resolution; results show a downscaled preview inline plus the absolute
  path, a file:// link and dimensions. Quote the path to the user. Images go to the output_dir argument if
  given, else to {{default_folder}}.
- {SIZE_RULES}.
- Cost grows with quality and size; high quality 4K images can take minutes. Prefer quality 'low' for drafts.
- If a result says PLACEHOLDER, the server runs its offline fake backend: tell the user to set OPENAI_API_KEY."""


def _options(size: str, quality: str, n: int, background: str, output_format: str,
             output_compression: int | None, user: str | None, partial_images: int) -> RenderOptions:
    return RenderOptions(
        size=ImageSize.parse(size), quality=Quality(quality), n=n, background=Background(background),
        output_format=OutputFormat(output_format), output_compression=output_compression, user=user or None,
        partial_images=partial_images,
    )


class ToolSurface:
    """Adapts MCP calls to the use cases and back; one instance per server."""

    def __init__(self, container: Container, server: MCPServer) -> None:
        settings = container.settings()
        self._container = container
        self._settings = settings
        self._server = server
        self._presenter = Presenter(container.codec(), settings.preview_max_edge, settings.preview_max_bytes)
        self._resources: set[str] = set()

    # Resolved on first use: building the OpenAI backend imports the SDK, which start-up need not wait for.
    @functools.cached_property
    def _generate(self) -> GenerateImage:
        return self._container.generate_image()

    @functools.cached_property
    def _edit(self) -> EditImage:
        return self._container.edit_image()

    @functools.cached_property
    def _sessions(self) -> EditSessions:
        return self._container.edit_sessions()

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

    @contextlib.asynccontextmanager
    async def progress(self, ctx: Context) -> AsyncIterator[Callable[[float, float | None, str], Awaitable[None]]]:
        """A progress reporter plus heartbeats while the API works; nothing at all without a progress token."""
        meta = ctx.request_context.meta or {}
        token = meta.get("progress_token", meta.get("progressToken")) if isinstance(meta, dict) else getattr(
            meta, "progress_token", None)
        if token is None:
            async def silent(progress: float, total: float | None, message: str) -> None:
                return None

            yield silent
            return
        state: dict[str, Any] = {"progress": 0.0, "total": None, "message": "working", "beats": 0}

        async def report(progress: float, total: float | None, message: str) -> None:
            state.update(progress=progress, total=total, message=message, beats=0)
            await ctx.report_progress(progress, total, message)

        async def heartbeat() -> None:
            waited = 0.0
            while True:
                await anyio.sleep(self._settings.heartbeat_s)
                waited += self._settings.heartbeat_s
                state["beats"] += 1
                # Progress must increase with every notification: creep towards the next whole step.
                creep = 0.9 * state["beats"] / (state["beats"] + 1)
                await ctx.report_progress(state["progress"] + creep, state["total"],
                                          f"{state['message']} ({waited:.0f}s elapsed)")

        async with anyio.create_task_group() as group:
            group.start_soon(heartbeat)
            try:
                yield report
            finally:
                group.cancel_scope.cancel()

    async def run(self, ctx: Context, call: Callable[..., Awaitable[Outcome]], inline: InlineMode,
                  requested: dict[str, Any]) -> CallToolResult:
        try:
            roots = await self.roots(ctx)
            async with self.progress(ctx) as report:
                outcome = await call(roots, report)
        except ImageServerError as e:
            raise ToolError(scrub(str(e), self._settings.secrets)) from None
        return await self.present(outcome, inline, requested)

    async def present(self, outcome: Outcome, inline: InlineMode, requested: dict[str, Any]) -> CallToolResult:
        try:
            blocks, previews, notes = await anyio.to_thread.run_sync(
                self._presenter.inline_images, outcome.images, inline)
        except Exception as e:  # the files are saved; a failed preview must not turn that into an error
            log.exception("inline preview failed")
            blocks, previews = [], [None] * len(outcome.images)
            notes = [f"No inline preview ({type(e).__name__}); the files on disk are complete."]
        infos = [
            self._presenter.image_info(image, preview)
            for image, preview in zip(outcome.images, previews, strict=True)
        ]
        for image in outcome.images:
            self._publish(image.path, image.mime_type)
        text = self._presenter.text(outcome, infos, notes)
        output = ImageToolOutput(
            model=outcome.model, prompt=outcome.prompt, backend=outcome.backend, route=outcome.route,
            placeholder=outcome.placeholder, requested=requested, applied=outcome.applied, images=infos,
            partial_images=[self._presenter.image_info(p) for p in outcome.partials],
            usage=UsageInfo(**outcome.usage.as_dict()) if outcome.usage else None,  # type: ignore[arg-type]
            cost_usd_estimated=outcome.cost_usd, request_id=outcome.request_id, notes=[*outcome.notes, *notes],
            session_id=outcome.session_id, turn=outcome.turn, parent_turn=outcome.parent_turn,
        )
        content: list[Any] = [TextContent(type="text", text=text)]
        content += [ImageContent(type="image", data=data, mime_type=mime) for data, mime in blocks]
        content += [
            ResourceLink(type="resource_link", name=info.filename, uri=info.uri, mime_type=info.mime_type,
                         size=info.size_bytes, description=f"{info.width}x{info.height} full-resolution image")
            for info in infos
        ]
        return CallToolResult(content=content, structured_content=output.model_dump(mode="json"))

    def _publish(self, path: str, mime_type: str) -> None:
        """Make the file readable with resources/read under its file:// URI."""
        uri = Path(path).as_uri()
        if uri in self._resources:
            return
        self._resources.add(uri)
        self._server.add_resource(FileResource(uri=uri, path=Path(path), name=Path(path).name,
                                               mime_type=mime_type, encoding=None))

    def register(self) -> None:
        surface = self

        def tool(**kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
            """Register with the docstring dedented: the description is what the calling model reads."""

            def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
                surface._server.add_tool(fn, description=inspect.cleandoc(fn.__doc__ or ""), **kwargs)
                return fn

            return decorator
        write = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False,
                                open_world_hint=True)

        @tool(name="generate_image", title="Generate image", annotations=write, structured_output=True)
        async def generate_image(
            prompt: Prompt, ctx: Context, size: Size = "auto", quality: QualityArg = "auto", n: N = 1,
            background: BackgroundArg = "auto", output_format: FormatArg = "png",
            output_compression: Compression = None, moderation: ModerationArg = "auto", output_dir: OutputDir = None,
            filename_prefix: Prefix = None, user: User = None, inline: Inline = "preview",
            partial_images: Partials = 0, save_partials: SavePartials = False,
        ) -> Annotated[CallToolResult, ImageToolOutput]:
            """Create images from a text prompt with gpt-image-2. Saves every image to disk and returns a preview,
            the absolute path, size and estimated cost. Use edit_image to change existing pictures."""
            requested = _requested(locals())

            async def call(roots: tuple[str, ...] | None, report: Any) -> Outcome:
                options = _options(size, quality, n, background, output_format, output_compression, user,
                                   partial_images)
                request = GenerationRequest(prompt, options, Moderation(moderation))
                placement = Placement(output_dir, filename_prefix, roots, save_partials)
                return await surface._generate(request, placement, report)

            return await surface.run(ctx, call, inline, requested)

        @tool(name="edit_image", title="Edit or compose images", annotations=write, structured_output=True)
        async def edit_image(
            prompt: Prompt, images: Images, ctx: Context, mask: Mask = None, size: Size = "auto",
            quality: QualityArg = "auto", n: N = 1, background: BackgroundArg = "auto",
            output_format: FormatArg = "png", output_compression: Compression = None, output_dir: OutputDir = None,
            filename_prefix: Prefix = None, user: User = None, inline: Inline = "preview",
            partial_images: Partials = 0, save_partials: SavePartials = False,
        ) -> Annotated[CallToolResult, ImageToolOutput]:
            """Edit one image or compose several (1..16 references, optional mask) into a new image with
            gpt-image-2. Inputs are checked locally before anything is sent. For several rounds of changes on
            the same picture, prefer start_edit_session."""
            requested = _requested(locals())

            async def call(roots: tuple[str, ...] | None, report: Any) -> Outcome:
                options = _options(size, quality, n, background, output_format, output_compression, user,
                                   partial_images)
                placement = Placement(output_dir, filename_prefix, roots, save_partials)
                return await surface._edit(prompt, images, mask, options, placement, report)

            return await surface.run(ctx, call, inline, requested)

        @tool(name="start_edit_session", title="Start an edit session", annotations=write,
                     structured_output=True)
        async def start_edit_session(
            prompt: Prompt, images: Images, ctx: Context, mask: Mask = None, size: Size = "auto",
            quality: QualityArg = "auto", n: N = 1, background: BackgroundArg = "auto",
            output_format: FormatArg = "png", output_compression: Compression = None, output_dir: OutputDir = None,
            filename_prefix: Prefix = None, user: User = None, inline: Inline = "preview",
            partial_images: Partials = 0, save_partials: SavePartials = False,
        ) -> Annotated[CallToolResult, ImageToolOutput]:
            """Begin refining an image over several turns: makes the first edit (like edit_image) and returns a
            session_id. Then call continue_edit_session with that id for each further change. The settings given
            here are the session's defaults."""
            requested = _requested(locals())

            async def call(roots: tuple[str, ...] | None, report: Any) -> Outcome:
                options = _options(size, quality, n, background, output_format, output_compression, user,
                                   partial_images)
                placement = Placement(output_dir, filename_prefix, roots, save_partials)
                return await surface._sessions.start(prompt, images, mask, options, placement, report)

            return await surface.run(ctx, call, inline, requested)

        @tool(name="continue_edit_session", title="Continue an edit session", annotations=write,
                     structured_output=True)
        async def continue_edit_session(
            session_id: SessionId, prompt: Prompt, ctx: Context,
            from_turn: Annotated[int | None, Field(ge=1, description=(
                "Edit the image of this earlier turn instead of the latest (undo/branch). Default: latest."))] = None,
            mask: Mask = None, size: Annotated[str | None, Field(description="Override the session's size.")] = None,
            quality: Annotated[Literal["auto", "low", "medium", "high"] | None,
                               Field(description="Override the session's quality.")] = None,
            n: Annotated[int | None, Field(ge=1, le=10, description="Override the session's n.")] = None,
            background: Annotated[Literal["auto", "opaque", "transparent"] | None,
                                  Field(description="Override the session's background.")] = None,
            output_format: Annotated[Literal["png", "jpeg", "webp"] | None,
                                     Field(description="Override the session's output format.")] = None,
            output_compression: Compression = None, output_dir: OutputDir = None, filename_prefix: Prefix = None,
            inline: Inline = "preview", partial_images: Partials = 0, save_partials: SavePartials = False,
        ) -> Annotated[CallToolResult, ImageToolOutput]:
            """Apply the next change in an edit session: edits the latest turn's image (or from_turn's) and
            returns the new turn. Omitted settings keep the session's values."""
            requested = _requested(locals())

            async def call(roots: tuple[str, ...] | None, report: Any) -> Outcome:
                overrides: dict[str, Any] = {"partial_images": partial_images}
                if size is not None:
                    overrides["size"] = ImageSize.parse(size)
                if quality is not None:
                    overrides["quality"] = Quality(quality)
                if n is not None:
                    overrides["n"] = n
                if background is not None:
                    overrides["background"] = Background(background)
                if output_format is not None:
                    overrides["output_format"] = OutputFormat(output_format)
                    if output_compression is None:
                        overrides["output_compression"] = None
                if output_compression is not None:
                    overrides["output_compression"] = output_compression
                placement = Placement(output_dir, filename_prefix, roots, save_partials)
                return await surface._sessions.continue_(session_id, prompt, overrides, from_turn, mask, placement,
                                                         report)

            return await surface.run(ctx, call, inline, requested)

        @tool(name="end_edit_session", title="End an edit session",
                     annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False,
                                                 open_world_hint=False))
        async def end_edit_session(session_id: SessionId) -> EndSessionOutput:
            """Close an edit session. Its images stay on disk; the session can no longer be continued."""
            try:
                session = surface._sessions.end(session_id)
            except ImageServerError as e:
                raise ToolError(str(e)) from None
            paths = [path for turn in session.turns for path in turn.file_paths]
            return EndSessionOutput(session_id=session.id, ended=True, turns=len(session.turns), file_paths=paths)

        @tool(name="list_edit_sessions", title="List edit sessions",
                     annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False))
        async def list_edit_sessions() -> SessionListOutput:
            """List live edit sessions, most recent first: id, created/updated times, turns, last prompt and
            last image path, with each turn's history."""
            return SessionListOutput(sessions=[session_info(s) for s in surface._sessions.list()])


def _requested(arguments: dict[str, Any]) -> dict[str, Any]:
    """The caller's arguments as given (minus the context and the prompt), for the structured result."""
    return {
        k: v for k, v in arguments.items()
        if k != "prompt" and isinstance(v, str | int | float | bool | list) and v is not None
    }


def build_server(container: Container) -> MCPServer:
    settings = container.settings()

    uses_openai = settings.resolved_backend == "openai" and settings.api_key is not None

    @contextlib.asynccontextmanager
    async def lifespan(_server: MCPServer) -> AsyncIterator[None]:
        if uses_openai:  # import the SDK while the client handshakes, not during the first tool call
            threading.Thread(target=importlib.import_module, args=(OPENAI_ADAPTER,), daemon=True).start()
        try:
            yield
        finally:
            if uses_openai and OPENAI_ADAPTER in sys.modules:
                await container.openai_client().close()

    server = MCPServer(
        lifespan=lifespan,
        name="gpt-image-2-mcp",
        title="gpt-image-2 images",
        version=__version__,
        instructions=INSTRUCTIONS.replace("{default_folder}", str(container.sink().default_folder)),
        log_level="DEBUG" if settings.debug else "WARNING",
    )
    ToolSurface(container, server).register()
    return server

