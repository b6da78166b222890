"""Whose call this is. Over stdio every call is the local user's; an authenticated HTTP transport will name
the token's subject here, and every session, image and record is kept and queried by that owner."""

from __future__ import annotations

from typing import Any

from gpt_image_2_mcp.domain.sessions import LOCAL_OWNER


def owner_of(ctx: Any) -> str:
    """The owner of the request `ctx` belongs to (None: outside a request, the local user)."""
    return LOCAL_OWNER
