"""JwtTokenVerifier: OAuth 2.1 access tokens as JWTs, checked against the identity provider's JWKS (pyjwt)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import anyio
import jwt
from jwt import PyJWKClient

from gpt_image_2_mcp.domain.access import VerifiedToken
from gpt_image_2_mcp.domain.ports import AccessTokenVerifier

log = logging.getLogger(__name__)

ASYMMETRIC_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
"""Only public-key signatures: never `none`, never HS* (a JWKS holds public keys; accepting HMAC would let a
public key be used as a shared secret)."""
REQUIRED_CLAIMS = ("exp", "iss", "aud", "sub")


class JwtTokenVerifier(AccessTokenVerifier):
    """Verifies signature, expiry (and nbf/iat), issuer and audience (RFC 8707: this server's resource URL).

    Keys come from the JWKS URL through pyjwt's PyJWKClient: the key set is cached for `cache_s` seconds, and
    a token signed with a key id the cache does not know triggers one refetch (at most every `cooldown_s`),
    which is how a rotated key is picked up without a restart."""

    def __init__(self, jwks_url: str, issuer: str, audience: str, *, leeway_s: float = 30.0,
                 cache_s: float = 300.0, cooldown_s: float = 30.0, timeout_s: float = 10.0) -> None:
        self._issuer = issuer
        self._audience = audience
        self._leeway_s = leeway_s
        self._keys = PyJWKClient(jwks_url, cache_jwk_set=True, lifespan=cache_s, cooldown_duration=cooldown_s,
                                 timeout=timeout_s)

    async def verify(self, token: str) -> VerifiedToken | None:
        # PyJWKClient fetches with blocking urllib: off the event loop.
        return await anyio.to_thread.run_sync(self._verify, token)

    def _verify(self, token: str) -> VerifiedToken | None:
        try:
            key = self._keys.get_signing_key_from_jwt(token)
            # pyjwt refuses a key of the wrong type for the token's algorithm (an RSA key for ES256, say).
            claims = jwt.decode(
                token, key.key, algorithms=list(ASYMMETRIC_ALGORITHMS), audience=self._audience,
                issuer=self._issuer, leeway=self._leeway_s, options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.PyJWKClientConnectionError as e:  # the identity provider is down: refuse, and say so in the log
            log.warning("cannot fetch the identity provider's keys: %s", e)
            return None
        except jwt.PyJWTError as e:  # bad signature, expired, wrong issuer or audience, unknown key, malformed
            log.info("bearer token refused: %s", type(e).__name__)
            return None
        except Exception as e:  # never let a token crash the request: a failure to check is a refusal
            log.warning("bearer token could not be checked: %s", type(e).__name__)
            return None
        return self._token_of(claims)

    def _token_of(self, claims: dict[str, Any]) -> VerifiedToken | None:
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            return None
        return VerifiedToken(
            subject=subject, issuer=self._issuer, scopes=scopes_of(claims),
            client_id=str(claims.get("client_id") or claims.get("azp") or subject),
            expires_at=int(claims["exp"]),
        )


def scopes_of(claims: dict[str, Any]) -> frozenset[str]:
    """Scopes from `scope` (RFC 9068: space-separated) or `scp` (a list, as some providers send it)."""
    value: Any = claims.get("scope", claims.get("scp", ""))
    items: Sequence[Any] = value.split() if isinstance(value, str) else value if isinstance(value, list) else ()
    return frozenset(str(item) for item in items if item)
