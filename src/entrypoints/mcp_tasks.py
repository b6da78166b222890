"""MCP tasks (protocol 2025-11-25) over the job runner: a task-augmented tools/call returns a task at once while
the image is made; tasks/get, tasks/result, tasks/list and tasks/cancel follow it from any process.

The SDK ships the types only. Its extension hook serves the new request methods (`MethodBinding`); what the hook
cannot do is done by one server middleware: declare the `tasks` capability in `initialize`, mark the paid tools
`execution.taskSupport: "optional"` in `tools/list`, and answer a task-augmented `tools/call` with a
CreateTaskResult (a `tools/call` handler's result is validated as a CallToolResult, so it cannot be one).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from mcp.server.context import ServerRequestContext
from mcp.server.extension import Extension, MethodBinding
from mcp.shared.exceptions import MCPError
from mcp_types import _types as wire

from gpt_image_2_mcp.domain.errors import ImageServerError
from gpt_image_2_mcp.domain.jobs import Job, JobStatus

from .owners import owner_of
from .protocol_errors import protocol_error
from .tool_outputs import iso_time
from .tool_runner import AS_TASK, JOB_META, ToolRunner
from .use_cases import UseCases

log = logging.getLogger(__name__)

TASKS_VERSION = "2025-11-25"
RELATED_TASK = "io.modelcontextprotocol/related-task"
POLL_INTERVAL_MS = 2_000
DEFAULT_TTL_MS = 60 * 60 * 1000
MAX_TTL_MS = 24 * 60 * 60 * 1000
MIN_TTL_MS = 15 * 60 * 1000
"""A shorter ttl asked for is raised to this (the spec lets a receiver choose): a task must not vanish while
its image is still being made, and the slowest call (request timeout, retries) fits in it."""
INVALID_PARAMS = -32602
CAPABILITY = {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}


def task_of(job: Job) -> wire.Task:
    return wire.Task(
        task_id=job.job_id, status=job.status.value, status_message=job.error or job.status_message,
        created_at=iso_time(job.created_at), last_updated_at=iso_time(job.updated_at), ttl=job.ttl_ms,
        poll_interval=POLL_INTERVAL_MS,
    )


def dumped(model: Any) -> dict[str, Any]:
    return model.model_dump(by_alias=True, mode="json", exclude_none=True)


class ImageTasks(Extension):
    """tasks/get, tasks/result, tasks/list and tasks/cancel on the 2025-11-25 wire, each by the caller's owner."""

    identifier = "io.github.gpt-image-2-mcp/tasks"

    def __init__(self, use_cases: UseCases, runner: ToolRunner) -> None:
        self._use_cases = use_cases
        self._runner = runner

    def methods(self) -> Sequence[MethodBinding]:
        versions = (TASKS_VERSION,)
        return (
            MethodBinding("tasks/get", wire.GetTaskRequestParams, self.get, protocol_versions=versions),
            MethodBinding("tasks/result", wire.GetTaskPayloadRequestParams, self.result, protocol_versions=versions),
            MethodBinding("tasks/list", wire.PaginatedRequestParams, self.list, protocol_versions=versions),
            MethodBinding("tasks/cancel", wire.CancelTaskRequestParams, self.cancel, protocol_versions=versions),
        )

    async def get(self, ctx: ServerRequestContext[Any], params: wire.GetTaskRequestParams) -> dict[str, Any]:
        return dumped(task_of(await self._job(ctx, params.task_id)))

    async def result(self, ctx: ServerRequestContext[Any], params: wire.GetTaskPayloadRequestParams
                     ) -> dict[str, Any]:
        """The tool's CallToolResult once the task is done; like the spec says, it waits until then."""
        jobs = await self._use_cases.jobs()
        job = await self._guarded(jobs.wait(owner_of(ctx), params.task_id, None))
        if job.status in (JobStatus.FAILED, JobStatus.CANCELLED):
            why = (job.error or job.status_message or "no reason was recorded").rstrip(".")
            raise MCPError(code=INVALID_PARAMS, message=f"Task {job.job_id} {job.status.value}: {why}. Call the tool "
                                                        "again for a new result.")
        try:
            result = await self._runner.finished(None, job)
        except ImageServerError as e:  # a tool error: the task completed, its result is an error
            result = wire.CallToolResult(content=[wire.TextContent(type="text", text=str(e))], is_error=True)
        except Exception as e:  # ToolError from the runner carries the job's error text
            result = wire.CallToolResult(content=[wire.TextContent(type="text", text=str(e))], is_error=True)
        payload = dumped(result)
        payload.setdefault("_meta", {})[RELATED_TASK] = {"taskId": job.job_id}
        return payload

    async def list(self, ctx: ServerRequestContext[Any], params: wire.PaginatedRequestParams) -> dict[str, Any]:
        jobs = await self._use_cases.jobs()
        page = await self._guarded(jobs.page(owner_of(ctx), params.cursor))
        return dumped(wire.ListTasksResult(tasks=[task_of(job) for job in page.jobs], next_cursor=page.next_cursor))

    async def cancel(self, ctx: ServerRequestContext[Any], params: wire.CancelTaskRequestParams) -> dict[str, Any]:
        job = await self._job(ctx, params.task_id)
        if job.status.finished:
            raise MCPError(code=INVALID_PARAMS,
                           message=f"Task {job.job_id} is already {job.status.value}; it cannot be cancelled.")
        jobs = await self._use_cases.jobs()
        return dumped(task_of(await self._guarded(jobs.cancel(owner_of(ctx), params.task_id))))

    async def _job(self, ctx: ServerRequestContext[Any], task_id: str) -> Job:
        jobs = await self._use_cases.jobs()
        return await self._guarded(jobs.get(owner_of(ctx), task_id))

    async def _guarded(self, pending: Awaitable[Any]) -> Any:
        try:
            return await pending
        except ImageServerError as e:  # unknown task, another owner's, or the store failing
            raise protocol_error(e, self._runner.remote) from None


Next = Callable[[ServerRequestContext[Any]], Awaitable[Any]]


class TasksMiddleware:
    """What the extension hook cannot do (see the module docstring), on the 2025-11-25 wire only."""

    def __init__(self, use_cases: UseCases, paid_tools: frozenset[str], remote: bool = False) -> None:
        self._use_cases = use_cases
        self._paid_tools = paid_tools
        self._remote = remote

    async def __call__(self, ctx: ServerRequestContext[Any], call_next: Next) -> Any:
        if ctx.method == "initialize":
            return self._with_capability(await call_next(ctx))
        if ctx.protocol_version != TASKS_VERSION:
            return await call_next(ctx)
        if ctx.method == "tools/list":
            return self._with_task_support(await call_next(ctx))
        params: Mapping[str, Any] = ctx.params or {}
        if ctx.method == "tools/call" and params.get("task") is not None:
            return await self._as_task(ctx, params, call_next)
        return await call_next(ctx)

    @staticmethod
    def _with_capability(result: Any) -> Any:
        if isinstance(result, dict) and result.get("protocolVersion") == TASKS_VERSION:
            result.setdefault("capabilities", {})["tasks"] = CAPABILITY
        return result

    def _with_task_support(self, result: Any) -> Any:
        for tool in result.get("tools", []) if isinstance(result, dict) else []:
            if tool.get("name") in self._paid_tools:
                tool["execution"] = {"taskSupport": "optional"}
        return result

    async def _as_task(self, ctx: ServerRequestContext[Any], params: Mapping[str, Any], call_next: Next) -> Any:
        if params.get("name") not in self._paid_tools:
            raise MCPError(code=INVALID_PARAMS, message=f"Tool {params.get('name')!r} cannot run as a task; call "
                           "it without `task`.")
        requested = (params.get("task") or {}).get("ttl")
        asked = requested if isinstance(requested, int) and requested > 0 else DEFAULT_TTL_MS
        ttl = min(max(asked, MIN_TTL_MS), MAX_TTL_MS)
        token = AS_TASK.set(ttl)
        try:
            result = await call_next(ctx)
        finally:
            AS_TASK.reset(token)
        job_id = ((result.get("_meta") or {}).get(JOB_META)) if isinstance(result, dict) else None
        jobs = await self._use_cases.jobs()
        try:
            if job_id is None:  # refused before any job existed (bad arguments): a task that completed with the error
                job = await jobs.failed_early(owner_of(ctx), str(params.get("name")), _text_of(result), ttl)
            else:
                job = await jobs.get(owner_of(ctx), job_id)
                jobs.watch(job.job_id, _notifier(ctx))
        except ImageServerError as e:  # the store failing: no task could be recorded
            raise protocol_error(e, self._remote) from None
        return dumped(wire.CreateTaskResult(task=task_of(job)))


def _text_of(result: Any) -> str:
    content = result.get("content") if isinstance(result, dict) else None
    return " ".join(block.get("text", "") for block in content or [] if isinstance(block, dict)) or "failed"


def _notifier(ctx: ServerRequestContext[Any]) -> Callable[[Job], Awaitable[None]]:
    """Send notifications/tasks/status on the connection the task was created on, while it stays open."""
    session = ctx.session

    async def notify(job: Job) -> None:
        params = wire.TaskStatusNotificationParams(**task_of(job).model_dump())
        try:
            await session.send_notification(wire.TaskStatusNotification(params=params))
        except Exception as e:  # the client went away: the task goes on regardless
            log.debug("task status not sent: %s", type(e).__name__)

    return notify
