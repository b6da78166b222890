"""The two one-shot image tools: generate_image and edit_image."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult

from gpt_image_2_mcp.domain.outcomes import Outcome, Placement
from gpt_image_2_mcp.domain.ports import ProgressReporter
from gpt_image_2_mcp.domain.render_settings import Moderation, RenderOptions
from gpt_image_2_mcp.domain.services import EditInputs
from gpt_image_2_mcp.domain.values import GenerationRequest

from .tool_arguments import (
    BackgroundArg,
    Compression,
    ConfirmCost,
    FormatArg,
    IdempotencyKey,
    Images,
    Inline,
    Mask,
    ModerationArg,
    N,
    OutputDir,
    Partials,
    Prefix,
    Prompt,
    QualityArg,
    SavePartials,
    Size,
    User,
    render_overrides,
)
from .tool_outputs import ImageToolOutput
from .tool_runner import ToolRunner
from .use_cases import UseCases


class ImageTools:
    """generate_image and edit_image, over the use cases."""

    def __init__(self, use_cases: UseCases, runner: ToolRunner) -> None:
        self._use_cases = use_cases
        self._runner = runner

    async def generate_image(
        self, prompt: Prompt, ctx: Context, size: Size = "auto", quality: QualityArg = "auto", n: N = 1,
        background: BackgroundArg = "auto", output_format: FormatArg = "png", output_compression: Compression = None,
        moderation: ModerationArg = "auto", output_dir: OutputDir = None, filename_prefix: Prefix = None,
        user: User = None, inline: Inline = "preview", partial_images: Partials = 0,
        save_partials: SavePartials = False, idempotency_key: IdempotencyKey = None,
        confirm_cost: ConfirmCost = False,
    ) -> Annotated[CallToolResult, ImageToolOutput]:
        """Create images from a text prompt with gpt-image-2. Saves every image to disk and returns a preview,
        the absolute path, size and estimated cost. Use edit_image to change existing pictures."""
        arguments = dict(locals())

        async def call(placement: Placement, progress: ProgressReporter) -> Outcome:
            options = render_overrides(arguments, placement).apply_to(RenderOptions())
            request = GenerationRequest(prompt, options, Moderation(moderation))
            return await (await self._use_cases.generate())(request, placement, progress)

        return await self._runner.run(ctx, "generate_image", arguments, call)

    async def edit_image(
        self, prompt: Prompt, images: Images, ctx: Context, mask: Mask = None, size: Size = "auto",
        quality: QualityArg = "auto", n: N = 1, background: BackgroundArg = "auto", output_format: FormatArg = "png",
        output_compression: Compression = None, output_dir: OutputDir = None, filename_prefix: Prefix = None,
        user: User = None, inline: Inline = "preview", partial_images: Partials = 0,
        save_partials: SavePartials = False, idempotency_key: IdempotencyKey = None,
        confirm_cost: ConfirmCost = False,
    ) -> Annotated[CallToolResult, ImageToolOutput]:
        """Edit one image or compose several (1..16 references, optional mask) into a new image with
        gpt-image-2. Inputs are checked locally before anything is sent. For several rounds of changes on
        the same picture, prefer start_edit_session."""
        arguments = dict(locals())

        async def call(placement: Placement, progress: ProgressReporter) -> Outcome:
            options = render_overrides(arguments, placement).apply_to(RenderOptions())
            inputs = EditInputs(tuple(images), mask)
            return await (await self._use_cases.edit())(prompt, inputs, options, placement, progress)

        return await self._runner.run(ctx, "edit_image", arguments, call)
