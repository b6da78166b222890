"""The edit-session tools: start, continue (or branch), end and list."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult

from gpt_image_2_mcp.domain.errors import ImageServerError
from gpt_image_2_mcp.domain.outcomes import Outcome, Placement
from gpt_image_2_mcp.domain.ports import ProgressReporter
from gpt_image_2_mcp.domain.render_settings import RenderOptions
from gpt_image_2_mcp.domain.services import EditInputs

from .owners import owner_of
from .tool_arguments import (
    BackgroundArg,
    BackgroundOverride,
    Compression,
    ConfirmCost,
    FormatArg,
    FormatOverride,
    FromTurn,
    IdempotencyKey,
    Images,
    Inline,
    Mask,
    N,
    NOverride,
    OutputDir,
    Partials,
    Prefix,
    Prompt,
    QualityArg,
    QualityOverride,
    SavePartials,
    SessionId,
    Size,
    SizeOverride,
    User,
    render_overrides,
)
from .tool_outputs import EndSessionOutput, ImageToolOutput, SessionListOutput, end_session_output, session_info
from .tool_runner import ToolRunner
from .use_cases import UseCases


class SessionTools:
    """Refining one picture over many turns."""

    def __init__(self, use_cases: UseCases, runner: ToolRunner) -> None:
        self._use_cases = use_cases
        self._runner = runner

    async def start_edit_session(
        self, prompt: Prompt, images: Images, ctx: Context, mask: Mask = None, size: Size = "auto",
        quality: QualityArg = "auto", n: N = 1, background: BackgroundArg = "auto", output_format: FormatArg = "png",
        output_compression: Compression = None, output_dir: OutputDir = None, filename_prefix: Prefix = None,
        user: User = None, inline: Inline = "preview", partial_images: Partials = 0,
        save_partials: SavePartials = False, idempotency_key: IdempotencyKey = None,
        confirm_cost: ConfirmCost = False,
    ) -> Annotated[CallToolResult, ImageToolOutput]:
        """Begin refining an image over several turns: makes the first edit (like edit_image) and returns a
        session_id. Then call continue_edit_session with that id for each further change. The settings given
        here are the session's defaults."""
        arguments = dict(locals())

        async def call(placement: Placement, progress: ProgressReporter) -> Outcome:
            options = render_overrides(arguments, placement).apply_to(RenderOptions())
            sessions = await self._use_cases.sessions()
            return await sessions.start(prompt, EditInputs(tuple(images), mask), options, placement, progress)

        return await self._runner.run(ctx, "start_edit_session", arguments, call)

    async def continue_edit_session(
        self, session_id: SessionId, prompt: Prompt, ctx: Context, from_turn: FromTurn = None, mask: Mask = None,
        size: SizeOverride = None, quality: QualityOverride = None, n: NOverride = None,
        background: BackgroundOverride = None, output_format: FormatOverride = None,
        output_compression: Compression = None, output_dir: OutputDir = None, filename_prefix: Prefix = None,
        inline: Inline = "preview", partial_images: Partials = 0, save_partials: SavePartials = False,
        idempotency_key: IdempotencyKey = None,
        confirm_cost: ConfirmCost = False,
    ) -> Annotated[CallToolResult, ImageToolOutput]:
        """Apply the next change in an edit session: edits the latest turn's image (or from_turn's) and
        returns the new turn. Omitted settings keep the session's values."""
        arguments = dict(locals())

        async def call(placement: Placement, progress: ProgressReporter) -> Outcome:
            sessions = await self._use_cases.sessions()
            overrides = render_overrides(arguments, placement)
            return await sessions.continue_(session_id, prompt, overrides, from_turn, mask, placement, progress)

        return await self._runner.run(ctx, "continue_edit_session", arguments, call)

    async def end_edit_session(self, session_id: SessionId, ctx: Context) -> EndSessionOutput:
        """Close an edit session. Its images stay on disk; the session can no longer be continued. Waits for a
        turn still running in it, so the list of files is complete."""
        try:
            session = await (await self._use_cases.sessions()).end(session_id, owner_of(ctx))
        except ImageServerError as e:
            raise self._runner.error(e) from None
        return end_session_output(session)

    async def list_edit_sessions(self, ctx: Context) -> SessionListOutput:
        """List live edit sessions, most recent first: id, created/updated times (ISO 8601), turns, last prompt
        and last image path, with each turn's history."""
        sessions = await self._use_cases.sessions()
        try:
            listed = await sessions.list(owner_of(ctx))
        except ImageServerError as e:
            raise self._runner.error(e) from None
        return SessionListOutput(sessions=[session_info(s) for s in listed])
