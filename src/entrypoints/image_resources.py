"""Catalogued images as MCP resources: `image://{image_id}` (the full file) and `image://{image_id}/preview`,
readable from any process after a restart; `resources/list` pages through the caller's images."""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Awaitable, Callable

from mcp.server.lowlevel.helper_types import ReadResourceContents
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp.types import ListResourcesResult, Resource, ResourceTemplate
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from gpt_image_2_mcp.domain.catalogue import ImageRecord
from gpt_image_2_mcp.domain.errors import ImageServerError, StateStoreError
from gpt_image_2_mcp.domain.image_library import ImageLibrary

from .protocol_errors import for_caller, protocol_error
from .tool_outputs import iso_time

log = logging.getLogger(__name__)

SCHEME = "image://"
_URI = re.compile(r"^image://(?P<id>[A-Za-z0-9_-]{1,64})(?P<preview>/preview)?$")
TEMPLATES = [
    ResourceTemplate(uri_template="image://{image_id}", name="image",
                     description="A generated or edited image, full resolution, by its image_id."),
    ResourceTemplate(uri_template="image://{image_id}/preview", name="image-preview",
                     description="A downscaled preview of an image, small enough for any client."),
]


def image_uri(image_id: str) -> str:
    return f"{SCHEME}{image_id}"


def is_image_uri(uri: str) -> bool:
    return uri.startswith(SCHEME)


class ImageResources:
    """Reads and lists catalogued images for the caller (the owner), through the image library."""

    def __init__(self, library: Callable[[], Awaitable[ImageLibrary]], preview_edge: int, preview_bytes: int,
                 remote: bool = False) -> None:
        self._library = library
        self._preview_edge = preview_edge
        self._preview_bytes = preview_bytes
        self._remote = remote  # served over HTTP: a store failure is told as the remote caller can act on it

    async def read(self, uri: str, owner: str) -> list[ReadResourceContents]:
        match = _URI.match(uri)
        if match is None:
            raise ResourceNotFoundError(f"{uri} is not an image URI; they look like image://img_0123abcd.")
        library = await self._library()
        try:
            if match["preview"]:
                _, preview = await library.preview(owner, match["id"], self._preview_edge, self._preview_bytes)
                return [ReadResourceContents(content=preview.data, mime_type=preview.mime_type)]
            record, data = await library.read(owner, match["id"])
        except StateStoreError as e:  # the server's trouble (internal error), not a missing image
            raise ResourceError(for_caller(e, self._remote)) from None
        except ImageServerError as e:
            raise ResourceNotFoundError(str(e)) from None
        return [ReadResourceContents(content=data, mime_type=record.image.mime_type)]

    async def page(self, owner: str, cursor: str | None) -> ListResourcesResult:
        library = await self._library()
        try:
            page = await library.page(owner, cursor)
        except ImageServerError as e:  # a cursor from elsewhere, or the store failing
            raise protocol_error(e, self._remote) from None
        return ListResourcesResult(resources=[_listed(r) for r in page.records], next_cursor=page.next_cursor)


def _listed(record: ImageRecord) -> Resource:
    image = record.image
    prompt = record.prompt if len(record.prompt) <= 120 else record.prompt[:119] + "…"
    return Resource(uri=image_uri(record.image_id), name=image.filename, mime_type=image.mime_type,
                    size=image.size_bytes, title=prompt,
                    description=f"{image.width}x{image.height}, made {iso_time(record.created_at)}: {image.path}")


async def announce_new_images(ctx: Context) -> None:
    """Tell the client its resource list changed, the way its protocol era hears it."""
    try:
        if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
            await ctx.notify_resources_changed()
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", MCPDeprecationWarning)
                await ctx.session.send_resource_list_changed()
    except Exception as e:  # a notification is a courtesy: it must never fail the call that made the images
        log.debug("resources/list_changed not sent: %s", type(e).__name__)
