"""The image library: an owner's catalogued images, listed and read back from any process."""

from __future__ import annotations

import asyncio

from .catalogue import ImagePage, ImageRecord
from .errors import ImageNotFound, ImageServerError
from .ports import ImageCatalogue, ImageCodec, ImageSink
from .values import Preview

PAGE_SIZE = 50


class ImageLibrary:
    """Reads go through the sink's checked read-back, so only the very file the server wrote is served. A
    catalogued image whose file is gone reads as a clear error and is dropped from the catalogue."""

    def __init__(self, catalogue: ImageCatalogue, sink: ImageSink, codec: ImageCodec) -> None:
        self._catalogue = catalogue
        self._sink = sink
        self._codec = codec

    async def page(self, owner: str, cursor: str | None = None, limit: int = PAGE_SIZE) -> ImagePage:
        """A page of the owner's images whose files are still there, newest first."""
        page = await self._catalogue.page(owner, cursor, limit)
        still_there = await asyncio.to_thread(lambda: [self._sink.is_intact(r.image) for r in page.records])
        for record, there in zip(page.records, still_there, strict=True):
            if not there:
                await self._catalogue.remove(owner, record.image_id)
        intact = tuple(record for record, there in zip(page.records, still_there, strict=True) if there)
        return ImagePage(intact, page.next_cursor)

    async def read(self, owner: str, image_id: str) -> tuple[ImageRecord, bytes]:
        record = await self._catalogue.get(owner, image_id)
        try:
            data = await asyncio.to_thread(self._sink.read_back, record.image)
        except ImageServerError as e:
            await self._catalogue.remove(owner, image_id)
            raise ImageNotFound(f"Image {image_id} is catalogued but its file cannot be served: {e}") from e
        return record, data

    async def preview(self, owner: str, image_id: str, max_edge: int, max_bytes: int) -> tuple[ImageRecord, Preview]:
        record, data = await self.read(owner, image_id)
        return record, await asyncio.to_thread(self._codec.preview, data, max_edge, max_bytes)
