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
    catalogued image whose file is not there reads as a clear error and is left out of listings, but stays in
    the catalogue: a disk that is not mounted, a share that is down or a file moved away and back brings it
    back, link and all (a listing that dropped it lost it for good)."""

    def __init__(self, catalogue: ImageCatalogue, sink: ImageSink, codec: ImageCodec) -> None:
        self._catalogue = catalogue
        self._sink = sink
        self._codec = codec

    async def page(self, owner: str, cursor: str | None = None, limit: int = PAGE_SIZE) -> ImagePage:
        """Up to `limit` of the owner's images whose files are there, newest first. Others are left out and the
        page is filled from further on: each fetch asks for exactly what is missing, so the cursor of the last
        one is where the next page starts."""
        intact: list[ImageRecord] = []
        while True:
            page = await self._catalogue.page(owner, cursor, limit - len(intact))
            intact += await self._still_there(owner, page.records)
            cursor = page.next_cursor
            if len(intact) >= limit or cursor is None:
                return ImagePage(tuple(intact), cursor)

    async def _still_there(self, owner: str, records: tuple[ImageRecord, ...]) -> list[ImageRecord]:
        there = await asyncio.to_thread(lambda: [self._sink.is_intact(r.image) for r in records])
        return [record for record, kept in zip(records, there, strict=True) if kept]

    async def read(self, owner: str, image_id: str) -> tuple[ImageRecord, bytes]:
        record = await self._catalogue.get(owner, image_id)
        try:
            data = await asyncio.to_thread(self._sink.read_back, record.image)
        except ImageServerError as e:
            raise ImageNotFound(f"Image {image_id} is catalogued but its file cannot be served: {e} If the file "
                                "comes back as it was (a disk mounted again, a file moved back), so does this "
                                "link.") from e
        return record, data

    async def preview(self, owner: str, image_id: str, max_edge: int, max_bytes: int) -> tuple[ImageRecord, Preview]:
        record, data = await self.read(owner, image_id)
        return record, await asyncio.to_thread(self._codec.preview, data, max_edge, max_bytes)
