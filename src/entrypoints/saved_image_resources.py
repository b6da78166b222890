"""Saved images as MCP resources, readable with resources/read under their file:// URI."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.resources import Resource
from pydantic import ConfigDict

from gpt_image_2_mcp.domain.ports import ImageSink
from gpt_image_2_mcp.domain.values import SavedImage


class SavedImageResource(Resource):
    """One image this server wrote. Reading serves that very file or fails: never a link put in its place."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    image: SavedImage
    read_back: Callable[[SavedImage], bytes]
    """The sink's check-and-read (ImageSink.read_back)."""

    async def read(self) -> bytes:
        return await anyio.to_thread.run_sync(self.read_back, self.image)


class SavedImagePublisher:
    """Registers each saved image once, for the life of the process."""

    def __init__(self, server: MCPServer, sink: ImageSink) -> None:
        self._server = server
        self._sink = sink
        self._published: set[str] = set()

    def publish(self, image: SavedImage) -> None:
        uri = Path(image.path).as_uri()
        if uri in self._published:
            return
        self._published.add(uri)
        self._server.add_resource(SavedImageResource(
            uri=uri, name=image.filename, mime_type=image.mime_type, image=image, read_back=self._sink.read_back,
        ))
