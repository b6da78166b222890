"""Whose call this is. Over stdio (and over HTTP without auth, on loopback) every call is the local user's; with
auth it is the bearer token's subject, qualified by its issuer, and every session, image, job, task, idempotency
key and ledger entry is kept and queried by that owner."""

from __future__ import annotations

import hashlib
from typing import Any

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken

from gpt_image_2_mcp.domain.access import owner_name
from gpt_image_2_mcp.domain.errors import ImageServerError
from gpt_image_2_mcp.domain.sessions import LOCAL_OWNER

_authenticated_only = False
"""Set by build_server when auth is configured: then a request without a token has no owner (fail closed),
rather than falling back to the local user, whose records are not a remote caller's."""


class NoAuthenticatedCaller(ImageServerError):
    """Auth is on, yet this request carries no verified token (a bug, not a caller's mistake: refuse)."""


def require_authentication(required: bool) -> None:
    global _authenticated_only
    _authenticated_only = required


def owner_of(ctx: Any = None) -> str:
    """The owner of the current request. The SDK's auth middleware keeps the verified token in a context
    variable that follows the request into its handler, so `ctx` is not needed (it may be None)."""
    token = get_access_token()
    if token is None:
        if _authenticated_only:
            raise NoAuthenticatedCaller("This request carries no verified bearer token; it was refused.")
        return LOCAL_OWNER
    return owner_of_token(token)


def owner_of_token(token: AccessToken) -> str:
    issuer = (token.claims or {}).get("iss")
    return owner_name(str(issuer) if issuer else "unknown-issuer", token.subject or f"client:{token.client_id}")


def owner_folder(owner: str) -> str:
    """The caller's folder name under the output folder: a digest, so no user's name is written on disk and no
    subject can spell a path."""
    return "u-" + hashlib.sha256(owner.encode()).hexdigest()[:16]
