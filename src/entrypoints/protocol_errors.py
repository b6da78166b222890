"""Our errors as JSON-RPC errors, for the methods that have no tool result to carry them (resources, tasks).

The state store failing is the server's trouble, not the request's: internal error, with the message that says
what is wrong and that it is worth trying again. Anything else of ours is about what was asked (an unknown or
another user's id, a cursor from elsewhere): invalid params."""

from __future__ import annotations

from mcp.shared.exceptions import MCPError
from mcp.types import INTERNAL_ERROR, INVALID_PARAMS

from gpt_image_2_mcp.domain.errors import ImageServerError, StateStoreError


def protocol_error(error: ImageServerError) -> MCPError:
    code = INTERNAL_ERROR if isinstance(error, StateStoreError) else INVALID_PARAMS
    return MCPError(code=code, message=str(error))
