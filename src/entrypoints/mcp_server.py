"""Assembles the MCP server: instructions, lifespan, the six tools, and errors in the server's own voice."""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
from dependency_injector import providers
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import NotificationOptions
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.request_state import RequestStateSecurity
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, ListResourcesResult, PaginatedRequestParams, ResourceTemplate, ToolAnnotations
from pydantic import ValidationError

from gpt_image_2_mcp import __version__
from gpt_image_2_mcp.domain.render_settings import SIZE_RULES

from .container import Container
from .icons import server_icons, tool_icons
from .image_resources import TEMPLATES, ImageResources, is_image_uri
from .image_tools import ImageTools
from .interrupts import StdioInterrupts
from .job_tools import JobTools
from .mcp_tasks import ImageTasks, TasksMiddleware
from .owners import owner_of, require_authentication
from .parameter_errors import ExplainedParameterErrors
from .presentation import Presenter
from .prompts import register_prompts
from .session_tools import SessionTools
from .stdio_drain import answering_streams
from .tool_runner import ToolRunner
from .use_cases import UseCases, shut_down
from .validation_messages import explain_arguments
from .warm_up import WarmUpAfterFirstMessage

log = logging.getLogger(__name__)

INSTRUCTIONS = f"""Generate and edit images with OpenAI gpt-image-2.
- generate_image: text to image. edit_image: edit or compose 1..16 reference images (optional mask).
- For several rounds of changes on one picture, use start_edit_session, then continue_edit_session
  (from_turn branches from an earlier turn); end_edit_session when done; list_edit_sessions to find one.
{{where_images_go}}
- {SIZE_RULES}.
- Cost grows with quality and size; high quality 4K images can take minutes. Prefer quality 'low' for drafts.
- If a result says PLACEHOLDER, the server runs its offline fake backend: tell the user to set OPENAI_API_KEY."""

LOCAL_IMAGES = """\
- Every image is saved to disk in full resolution; results show a downscaled preview inline plus the absolute
  path, a file:// link and dimensions. Quote the path to the user. Images go to the output_dir argument if
  given, else to {default_folder}."""
REMOTE_IMAGES = """\
- Every image is saved in full resolution on the server, which the user's machine cannot read: results show
  a downscaled preview inline plus an image:// resource link; read the full image with resources/read.
  output_dir, if given, is a folder relative to the user's own folder on the server."""

JOB_SWEEP_S = 60.0
PAID_TOOLS = frozenset({"generate_image", "edit_image", "start_edit_session", "continue_edit_session"})
TOOL_NAMES = PAID_TOOLS | {"end_edit_session", "list_edit_sessions", "get_image_job"}
_PAID = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True)
_LOCAL_WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False,
                               open_world_hint=False)
_LOCAL_READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)


class ImageMCPServer(MCPServer):
    """MCPServer whose argument errors say, in the server's own words, which argument and what is accepted,
    and whose resources are the caller's catalogued images (image://…), paged from the state store."""

    def __init__(self, images: ImageResources, **settings: Any) -> None:
        super().__init__(**settings)
        self._images = images
        # The handshake era hears of new images only if the server says up front that it will tell; every
        # transport (stdio, both HTTP modes) asks the low-level server for these defaults.
        lowlevel = self._lowlevel_server
        defaults = lowlevel.create_initialization_options
        lowlevel.create_initialization_options = functools.partial(  # type: ignore[method-assign]
            _with_resources_changed, defaults)

    async def run_stdio_async(self) -> None:
        """The SDK's stdio serving, but stdin's EOF waits for the answers to the requests already read."""
        async with stdio_server() as (read_stream, write_stream):
            reads, writes = answering_streams(read_stream, write_stream)
            await self._lowlevel_server.run(reads, writes, self._lowlevel_server.create_initialization_options())

    async def read_resource(self, uri: Any, context: Context[Any, Any] | None = None) -> Any:
        if is_image_uri(str(uri)):
            return await self._images.read(str(uri), owner_of(context))
        return await super().read_resource(uri, context)

    async def list_resource_templates(self) -> list[ResourceTemplate]:
        return [*TEMPLATES, *await super().list_resource_templates()]

    async def _handle_list_resources(
        self, ctx: ServerRequestContext[Any], params: PaginatedRequestParams | None
    ) -> ListResourcesResult:
        return await self._images.page(owner_of(None), params.cursor if params else None)

    async def get_prompt(
        self, name: str, arguments: dict[str, Any] | None = None, context: Context[Any, Any] | None = None
    ) -> Any:
        known = [prompt.name for prompt in await self.list_prompts()]
        if name not in known:  # the SDK answers an unknown name with error code 0; it is the caller's mistake
            raise MCPError(INVALID_PARAMS, f"There is no prompt {name!r}. The prompts are: {', '.join(known)}.")
        return await super().get_prompt(name, arguments, context)

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> Any:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as e:
            if isinstance(e.__cause__, ValidationError):
                raise ToolError(explain_arguments(name, e.__cause__)) from None
            raise


def _with_resources_changed(defaults: Callable[..., Any], notification_options: NotificationOptions | None = None,
                            *args: Any, **kwargs: Any) -> Any:
    return defaults(notification_options or NotificationOptions(resources_changed=True), *args, **kwargs)


REPLICA_STOPPED = ("The server process running this call was stopped (a restart or a deploy) before the image was "
                   "saved. Nothing was saved; call the tool again.")
"""How a call stopped with its HTTP server reads: its operator stopped it, its caller cancelled nothing."""


def build_server(container: Container, interrupts: StdioInterrupts | None = None) -> MCPServer:
    settings = container.settings()
    use_cases = UseCases(container)

    @contextlib.asynccontextmanager
    async def lifespan(_server: MCPServer) -> AsyncIterator[None]:
        if interrupts is not None:
            interrupts.watch()
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(use_cases.sweep_jobs_every, JOB_SWEEP_S)
                try:
                    yield
                    if interrupts is not None:  # stdin closed: keep the promise made to callers told to come back
                        await use_cases.finish_jobs()
                finally:
                    group.cancel_scope.cancel()
        finally:  # cancelled too (Ctrl-C): the jobs are stopped and recorded, the state store closed
            with anyio.CancelScope(shield=True):
                await use_cases.stop_jobs(REPLICA_STOPPED if settings.transport == "http" else None)
                await shut_down(container)
            if interrupts is not None:
                interrupts.after_shutdown()

    # The SDK is imported in a daemon thread (shutdown never waits for it), started after the first message.
    warm_up = [WarmUpAfterFirstMessage(container.sdk_import)] if settings.resolved_backend == "openai" else []

    sink = container.sink()
    http = settings.transport == "http"
    images = ImageResources(use_cases.library, settings.preview_max_edge, settings.preview_max_bytes, remote=http)
    presenter = Presenter(container.codec(), sink, settings.preview_max_edge, settings.preview_max_bytes)
    container.arriving_images_observer.override(providers.Object(presenter))
    extras = None
    if http:  # auth (pyjwt, cryptography) and metrics cost ~30 ms to import: a stdio server never needs them
        from .http_extras import http_extras, install_http_extras

        extras = http_extras(container, use_cases, TOOL_NAMES)
    auth = extras.auth if extras else None
    require_authentication(auth is not None)
    runner = ToolRunner(settings, presenter, use_cases, sink.default_folder if http else None,
                        extras.links if extras else None)
    server = ImageMCPServer(
        images,
        auth=auth.settings if auth else None,
        token_verifier=auth.verifier if auth else None,
        extensions=[ImageTasks(use_cases, runner)],
        lifespan=lifespan,
        name="gpt-image-2-mcp",
        title="gpt-image-2 images",
        version=__version__,
        icons=server_icons(),
        instructions=INSTRUCTIONS.replace("{where_images_go}", REMOTE_IMAGES if http else LOCAL_IMAGES).replace(
            "{default_folder}", str(sink.default_folder)),
        log_level="DEBUG" if settings.debug else "WARNING",
        middleware=[ExplainedParameterErrors(), *warm_up],
        # Replicas must share the keys, or state sealed by one is refused by the next (2026-07-28 era).
        request_state_security=RequestStateSecurity(keys=settings.state_keys) if settings.state_keys else None,
    )
    if extras is not None:  # metrics and scopes before tasks: a task-augmented call is counted and checked too
        install_http_extras(server, extras, use_cases)
    server.middleware.append(TasksMiddleware(use_cases, PAID_TOOLS, remote=http))
    register_tools(server, ImageTools(use_cases, runner), SessionTools(use_cases, runner), JobTools(use_cases, runner))
    register_prompts(server)
    return server


def register_tools(server: MCPServer, images: ImageTools, sessions: SessionTools, jobs: JobTools) -> None:
    def add(fn: Callable[..., Any], title: str, annotations: ToolAnnotations) -> None:
        # The description is what the calling model reads: the docstring, dedented.
        server.add_tool(fn, title=title, description=inspect.cleandoc(fn.__doc__ or ""), annotations=annotations,
                        icons=tool_icons(fn.__name__), structured_output=True)

    add(images.generate_image, "Generate image", _PAID)
    add(images.edit_image, "Edit or compose images", _PAID)
    add(sessions.start_edit_session, "Start an edit session", _PAID)
    add(sessions.continue_edit_session, "Continue an edit session", _PAID)
    add(sessions.end_edit_session, "End an edit session", _LOCAL_WRITE)
    add(sessions.list_edit_sessions, "List edit sessions", _LOCAL_READ)
    add(jobs.get_image_job, "Get the result of a long image call", _LOCAL_READ)
