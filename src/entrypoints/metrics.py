"""Prometheus metrics for the HTTP server (GET /metrics, outside auth): tool calls, errors and latency per tool,
images made, estimated spend, jobs in flight. Labels name tools and outcomes only: never an owner, a prompt, a
path or a secret, so the page may be scraped without a token."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import MCPServer
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from gpt_image_2_mcp.domain.jobs import Job, JobStatus

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
"""Seconds: a tools/list answers in milliseconds, a high-quality 4K image takes minutes."""
OTHER_TOOL = "other"

Next = Callable[[ServerRequestContext[Any]], Awaitable[Any]]


class Metrics:
    """One registry per server (not the process-wide default), so two servers in one process never collide."""

    def __init__(self, tools: frozenset[str]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._tools = tools
        self.calls = Counter("gpt_image_2_tool_calls", "Tool calls received, by tool.", ["tool"],
                             registry=self.registry)
        self.errors = Counter("gpt_image_2_tool_errors", "Tool calls that ended in an error, by tool.", ["tool"],
                              registry=self.registry)
        self.latency = Histogram("gpt_image_2_tool_call_duration_seconds", "Time to answer a tool call, by tool.",
                                 ["tool"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.images = Counter("gpt_image_2_images", "Images made and saved by jobs that ran in this process.",
                              registry=self.registry)
        self.spend = Counter("gpt_image_2_estimated_spend_usd", "Estimated cost in USD of the jobs that completed "
                             "in this process.", registry=self.registry)
        self.jobs = Counter("gpt_image_2_jobs_finished", "Jobs that ended in this process, by outcome: completed, "
                            "error (a refusal or an API error), failed, cancelled.", ["outcome"],
                            registry=self.registry)
        self.in_flight = Gauge("gpt_image_2_jobs_in_flight", "Jobs running in this process now.",
                               registry=self.registry)

    def tool_label(self, name: object) -> str:
        """A tool's name, or 'other': a caller must not mint label values (unbounded series)."""
        return name if isinstance(name, str) and name in self._tools else OTHER_TOOL

    def job_finished(self, job: Job) -> None:
        """JobRunner's observer: count each paid call once, in the process that ran it, however it was fetched."""
        self.jobs.labels("error" if job.is_error else job.status.value).inc()
        if job.status is JobStatus.COMPLETED and not job.is_error and job.outcome is not None:
            self.images.inc(len(job.outcome.images))
            self.spend.inc(max(0.0, job.outcome.cost_usd))

    def count_jobs_in_flight(self, count: Callable[[], int]) -> None:
        self.in_flight.set_function(count)

    def page(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Counts and times every tools/call, whatever answers it (the tool, a refusal, a validation error)."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    async def __call__(self, ctx: ServerRequestContext[Any], call_next: Next) -> Any:
        if ctx.method != "tools/call":
            return await call_next(ctx)
        tool = self._metrics.tool_label((ctx.params or {}).get("name"))
        self._metrics.calls.labels(tool).inc()
        started = time.perf_counter()
        try:
            result = await call_next(ctx)
        except BaseException:
            self._metrics.errors.labels(tool).inc()
            raise
        finally:
            self._metrics.latency.labels(tool).observe(time.perf_counter() - started)
        if _is_error(result):
            self._metrics.errors.labels(tool).inc()
        return result


def _is_error(result: Any) -> bool:
    if isinstance(result, dict):
        return bool(result.get("isError") or result.get("is_error"))
    return bool(getattr(result, "is_error", False))


def add_metrics_route(server: MCPServer, metrics: Metrics) -> None:
    @server.custom_route("/metrics", methods=["GET"], include_in_schema=False)
    async def metrics_page(_request: Request) -> Response:
        return Response(metrics.page(), media_type=CONTENT_TYPE_LATEST)
