"""Signed, expiring download links for remote clients: `GET /images/{image_id}?o=…&exp=…&sig=…`.

A browser or a script cannot send the MCP bearer token, so the link carries its own proof: an HMAC-SHA256
(GPT_IMAGE_2_URL_SIGNING_KEY) over the image id, its owner and the expiry. The route is outside auth; a link
that was altered, belongs to someone else's image or has expired is refused. Replicas sharing the key and the
state store serve each other's links."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from urllib.parse import quote, urlencode

from mcp.server.mcpserver import MCPServer
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from gpt_image_2_mcp.domain.errors import ImageServerError, StateStoreError

from .use_cases import UseCases

ROUTE = "/images/{image_id}"


class LinkRefused(Exception):
    """The link is malformed, altered or expired (the message says which, without detail an attacker could use)."""


class DownloadLinks:
    """Makes and checks the links. `o` is the owner, base64url-encoded (the catalogue is queried by owner); it is
    covered by the signature, so a link cannot be moved to another owner's image."""

    def __init__(self, key: bytes, base_url: str, ttl_s: int, clock: Callable[[], float] = time.time) -> None:
        self._key = key
        self._base = base_url.rstrip("/")
        self._ttl_s = ttl_s
        self._clock = clock

    def url(self, image_id: str, owner: str) -> str:
        expires = int(self._clock()) + self._ttl_s
        query = urlencode({"o": _b64(owner.encode()), "exp": expires, "sig": self._sign(image_id, owner, expires)})
        return f"{self._base}/images/{quote(image_id, safe='')}?{query}"

    def owner_of(self, image_id: str, query: Mapping[str, str]) -> str:
        """The owner a valid link names; raises LinkRefused."""
        try:
            owner = base64.urlsafe_b64decode(query["o"] + "=" * (-len(query["o"]) % 4)).decode()
            expires = int(query["exp"])
            signature = query["sig"]
        except (KeyError, ValueError, UnicodeDecodeError, binascii.Error):
            raise LinkRefused("This download link is incomplete or malformed.") from None
        # As bytes: compare_digest refuses (TypeError) str with non-ASCII characters, which a link can carry.
        if not hmac.compare_digest(signature.encode(), self._sign(image_id, owner, expires).encode()):
            raise LinkRefused("This download link is not valid.")
        if expires < self._clock():
            raise LinkRefused("This download link has expired; ask for the image again (resources/read works too).")
        return owner

    def _sign(self, image_id: str, owner: str, expires: int) -> str:
        message = f"v1\n{image_id}\n{owner}\n{expires}".encode()
        return _b64(hmac.new(self._key, message, hashlib.sha256).digest())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def add_download_route(server: MCPServer, links: DownloadLinks, use_cases: UseCases) -> None:
    @server.custom_route(ROUTE, methods=["GET"], include_in_schema=False)
    async def download(request: Request) -> Response:
        image_id = request.path_params["image_id"]
        try:
            owner = links.owner_of(image_id, request.query_params)
        except LinkRefused as e:
            return PlainTextResponse(str(e), status_code=403)
        try:
            record, data = await (await use_cases.library()).read(owner, image_id)
        except StateStoreError:  # the image may well be there: say so, and that trying again is worth it
            return PlainTextResponse("The image catalogue cannot be read just now; try the link again shortly.",
                                     status_code=503, headers={"Retry-After": "5"})
        except ImageServerError:
            return PlainTextResponse("No such image (or its file is gone).", status_code=404)
        return Response(data, media_type=record.image.mime_type, headers={
            "Content-Disposition": f'inline; filename="{record.image.filename}"',
            "Cache-Control": "private, no-store",  # the link expires; no cache should outlive it
        })
