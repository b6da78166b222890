"""get_image_job: the result of a call that answered with a job id before its image was ready."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult

from gpt_image_2_mcp.domain.errors import ImageServerError

from .owners import owner_of
from .tool_arguments import JobId, WaitS
from .tool_outputs import ImageToolOutput
from .tool_runner import ToolRunner
from .use_cases import UseCases


class JobTools:
    """For clients without MCP tasks: come back for a long call's result."""

    def __init__(self, use_cases: UseCases, runner: ToolRunner) -> None:
        self._use_cases = use_cases
        self._runner = runner

    async def get_image_job(
        self, job_id: JobId, ctx: Context, wait_s: WaitS = 30,
    ) -> Annotated[CallToolResult, ImageToolOutput]:
        """Get the result of an image call that answered "still being made" with a job_id: waits up to wait_s
        seconds, then returns the images exactly as the original call would have (or says it is still
        working, or gives the error). Never starts or pays for anything new."""
        try:
            jobs = await self._use_cases.jobs()
            job = await jobs.wait(owner_of(ctx), job_id, wait_s)
        except ImageServerError as e:
            raise self._runner.error(e) from None
        if not job.status.finished:
            return self._runner.still_working(job)
        return await self._runner.finished(ctx, job)
