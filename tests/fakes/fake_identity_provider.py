"""A tiny identity provider on 127.0.0.1: serves a JWKS of RSA keys it generated, and mints JWTs with them.

`rotate()` adds a new signing key (and can drop the old one), the way a real provider rotates; `fetches` counts
how often the JWKS was asked for, so a test can see the verifier's cache at work."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm


class _Key:
    def __init__(self) -> None:
        self.kid = uuid.uuid4().hex[:12]
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def public_jwk(self) -> dict[str, Any]:
        jwk = json.loads(RSAAlgorithm.to_jwk(self.private.public_key()))
        return {**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}


class FakeIdentityProvider:
    """`with FakeIdentityProvider() as idp:` serves http://127.0.0.1:PORT/jwks.json until the block ends."""

    def __init__(self) -> None:
        self.keys = [_Key()]
        self.fetches = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.issuer = f"http://127.0.0.1:{self._server.server_port}"
        self.jwks_url = f"{self.issuer}/jwks.json"

    def __enter__(self) -> FakeIdentityProvider:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def rotate(self, keep_old: bool = True) -> None:
        self.keys = [*self.keys, _Key()] if keep_old else [_Key()]

    def token(self, subject: str = "alice", *, audience: str | list[str], scopes: str = "images:generate images:edit "
              "images:read", expires_in: float = 300, issuer: str | None = None, key: Any = None,
              kid: str | None = None, **claims: Any) -> str:
        """A JWT signed with the newest key (or `key`), claims overridable."""
        signer = self.keys[-1]
        now = int(time.time())
        payload = {"iss": issuer or self.issuer, "sub": subject, "aud": audience, "iat": now,
                   "exp": now + int(expires_in), "scope": scopes, "client_id": "test-client", **claims}
        return jwt.encode(payload, key or signer.private, algorithm="RS256", headers={"kid": kid or signer.kid})

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/jwks.json":
                    self.send_error(404)
                    return
                idp.fetches += 1
                body = json.dumps({"keys": [key.public_jwk() for key in idp.keys]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:  # keep test output clean
                pass

        return Handler


def other_private_key() -> Any:
    """A key the provider never published: a token signed with it has a bad signature."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)
