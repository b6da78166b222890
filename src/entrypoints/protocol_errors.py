"""Our errors as callers read them: as JSON-RPC errors, for the methods that have no tool result to carry them
(resources, tasks), and in words a remote caller can act on.

The state store failing is the server's trouble, not the request's: internal error, with the message that says
what is wrong and that it is worth trying again. Anything else of ours is about what was asked (an unknown or
another user's id, a cursor from elsewhere): invalid params."""

from __future__ import annotations

import logging

from mcp.shared.exceptions import MCPError
from mcp.types import INTERNAL_ERROR, INVALID_PARAMS

from gpt_image_2_mcp.domain.errors import ImageServerError, StateStoreError

log = logging.getLogger(__name__)

NOT_JSON_RPC = ('Invalid request: not a JSON-RPC 2.0 message (it needs "jsonrpc": "2.0", a "method" and, for a '
                'request, an "id").')
"""For a message that is JSON but not JSON-RPC, on stdio as over HTTP."""

REMOTE_STORE_FAILURE = ("The server's state store is not answering just now (the server's log says why); try "
                        "again in a moment.")


def protocol_error(error: ImageServerError, remote: bool = False) -> MCPError:
    code = INTERNAL_ERROR if isinstance(error, StateStoreError) else INVALID_PARAMS
    return MCPError(code=code, message=for_caller(error, remote))


def for_caller(error: ImageServerError, remote: bool) -> str:
    """The error's own words, except a state store failure told to a remote caller: where the store is and how
    to fix it are the operator's (they go to the log), and the caller can only try again."""
    if remote and isinstance(error, StateStoreError):
        log.warning("state store failure answered to a remote caller: %s", error)
        saved = error.saved_paths
        return REMOTE_STORE_FAILURE + (f" The image(s) of this call are saved at: {', '.join(saved)}." if saved else "")
    return str(error)
