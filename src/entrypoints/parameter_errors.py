"""Request parameters that do not fit a method, told in the server's own voice.

The SDK answers them with a bare "Invalid request parameters" (it keeps pydantic's text off the wire, rightly:
that text names internal models). A client author then cannot tell which parameter to fix, so this middleware,
outermost of all, names it: "`taskId` is required", "`task.ttl` was 'abc'; it must be a whole number"."""

from __future__ import annotations

from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerMiddleware, ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS
from pydantic import ValidationError

from .validation_messages import explain_parameters


class ExplainedParameterErrors(ServerMiddleware[Any]):
    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        try:
            return await call_next(ctx)
        except ValidationError as e:
            raise MCPError(code=INVALID_PARAMS, message=explain_parameters(ctx.method, e), data="") from None
