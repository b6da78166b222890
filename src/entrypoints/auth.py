"""Auth over HTTP: this server is an OAuth 2.1 resource server. Bearer tokens are checked by our verifiers (JWTs
against the identity provider's JWKS, or the tokens file); the SDK serves the RFC 9728 metadata and answers a
missing or bad token with 401 and `WWW-Authenticate`. Scopes are enforced per tool and per method here."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from gpt_image_2_mcp.adapters.jwt_token_verifier import JwtTokenVerifier
from gpt_image_2_mcp.adapters.tokens_file_verifier import TokensFileError, TokensFileVerifier
from gpt_image_2_mcp.domain.ports import AccessTokenVerifier

from .settings import ConfigurationError, Settings

log = logging.getLogger(__name__)

GENERATE, EDIT, READ = "images:generate", "images:edit", "images:read"
ALL_SCOPES = frozenset({GENERATE, EDIT, READ})
TOOL_SCOPES = {
    "generate_image": GENERATE,
    "edit_image": EDIT, "start_edit_session": EDIT, "continue_edit_session": EDIT, "end_edit_session": EDIT,
    "list_edit_sessions": READ, "get_image_job": READ,
}
READ_METHODS = ("resources/list", "resources/read", "tasks/")
INVALID_REQUEST = -32600


class SdkTokenVerifier(TokenVerifier):
    """The SDK's TokenVerifier over our verifiers, tried in order; the first that accepts the token wins."""

    def __init__(self, verifiers: Sequence[AccessTokenVerifier], resource: str | None) -> None:
        self._verifiers = tuple(verifiers)
        self._resource = resource

    async def verify_token(self, token: str) -> AccessToken | None:
        for verifier in self._verifiers:
            verified = await verifier.verify(token)
            if verified is not None:
                # The verifier checked `aud` against this server's audience, so the token was issued for this
                # resource: say so in the form the SDK's resource check compares (validate_token_resource).
                return AccessToken(
                    token=token, client_id=verified.client_id, scopes=sorted(verified.scopes),
                    expires_at=verified.expires_at, resource=self._resource, subject=verified.subject,
                    claims={"iss": verified.issuer},
                )
        return None


@dataclass(frozen=True, slots=True)
class AuthSetup:
    settings: AuthSettings
    verifier: SdkTokenVerifier


def auth_setup(settings: Settings) -> AuthSetup | None:
    """The auth this configuration asks for (None: none). Raises ConfigurationError, one line per problem."""
    if not settings.auth_configured:
        return None
    verifiers: list[AccessTokenVerifier] = []
    if settings.auth_tokens_file:
        try:
            verifiers.append(TokensFileVerifier(settings.auth_tokens_file, ALL_SCOPES))
        except TokensFileError as e:
            raise ConfigurationError([f"GPT_IMAGE_2_AUTH_TOKENS_FILE: {e}."]) from None
    if settings.auth_jwks_url:
        verifiers.append(_jwt_verifier(settings))
    # The SDK requires an issuer URL; with the tokens file alone it is never served nor compared to anything.
    own_url = settings.public_url or f"http://127.0.0.1:{settings.http_port}"
    # JWTs come from an identity provider this server names in its RFC 9728 metadata; tokens-file tokens come
    # from no authorization server, so without a JWKS there is no metadata to serve.
    resource = settings.public_url if settings.auth_jwks_url else None
    auth = AuthSettings(
        issuer_url=settings.auth_issuer or own_url, resource_server_url=resource, required_scopes=None,
        validate_token_resource=True if resource else None,
    )
    return AuthSetup(auth, SdkTokenVerifier(verifiers, settings.public_url))


def _jwt_verifier(settings: Settings) -> JwtTokenVerifier:
    missing = [name for name, value in (("GPT_IMAGE_2_AUTH_ISSUER", settings.auth_issuer),
                                        ("GPT_IMAGE_2_PUBLIC_URL", settings.public_url)) if not value]
    if missing:
        raise ConfigurationError([
            f"{name} is not set: GPT_IMAGE_2_AUTH_JWKS_URL needs it (the tokens' `iss`, and this server's public "
            "URL, which clients ask tokens for and which is the default audience)." for name in missing])
    assert settings.auth_jwks_url and settings.auth_issuer and settings.audience
    return JwtTokenVerifier(settings.auth_jwks_url, settings.auth_issuer, settings.audience)


def check_binding(settings: Settings) -> None:
    """Anything but loopback without auth would hand the OpenAI key to whoever reaches the port: refused."""
    if not settings.http_loopback and not settings.auth_configured:
        raise ConfigurationError([
            f"GPT_IMAGE_2_HTTP_HOST={settings.http_host} is not a loopback address and no authentication is "
            "configured: set GPT_IMAGE_2_AUTH_JWKS_URL (identity provider) or GPT_IMAGE_2_AUTH_TOKENS_FILE, or "
            "listen on 127.0.0.1."])


def required_scope(method: str, params: Mapping[str, Any] | None) -> str | None:
    """The scope a request needs (None: none, e.g. tools/list or prompts)."""
    if method == "tools/call":
        return TOOL_SCOPES.get(str((params or {}).get("name")), READ)
    if method.startswith(READ_METHODS):
        return READ
    return None


Next = Callable[[ServerRequestContext[Any]], Awaitable[Any]]


class ScopesMiddleware:
    """Refuses a request whose token lacks the scope it needs: a tool error for tools/call (the model reads
    it), a JSON-RPC error otherwise. Installed only when auth is configured."""

    async def __call__(self, ctx: ServerRequestContext[Any], call_next: Next) -> Any:
        needed = required_scope(ctx.method, ctx.params)
        token = get_access_token()
        if needed is None or (token is not None and needed in token.scopes):
            return await call_next(ctx)
        what = f"the tool {(ctx.params or {}).get('name')}" if ctx.method == "tools/call" else ctx.method
        message = (f"Your access token lacks the scope {needed}, which {what} needs. Ask for a token with "
                   f"{needed} (scopes: images:generate, images:edit, images:read).")
        log.info("refused %s: missing scope %s", ctx.method, needed)
        if ctx.method == "tools/call":
            refusal: dict[str, Any] = {"content": [{"type": "text", "text": message}], "isError": True}
            if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
                # A middleware that answers without call_next owns the envelope, and this era requires the type.
                refusal["resultType"] = "complete"
            return refusal
        raise MCPError(code=INVALID_REQUEST, message=message)
