"""InMemoryImageCatalogue: the image catalogue in a dict per owner, for throwaway runs and tests."""

from __future__ import annotations

from collections.abc import Sequence

from gpt_image_2_mcp.domain.catalogue import ImagePage, ImageRecord
from gpt_image_2_mcp.domain.errors import ImageNotFound
from gpt_image_2_mcp.domain.ports import ImageCatalogue

from .state_codec import decode_cursor, encode_cursor, newest_first


def image_not_found(image_id: str) -> ImageNotFound:
    return ImageNotFound(f"No image {image_id!r} in the catalogue. List your images with resources/list.")


class InMemoryImageCatalogue(ImageCatalogue):
    """Gone with the process. Cursors are the last (created_at, id) of a page, so new images never shift
    later pages."""

    def __init__(self) -> None:
        self._owners: dict[str, dict[str, ImageRecord]] = {}

    async def add(self, records: Sequence[ImageRecord]) -> None:
        for record in records:
            self._owners.setdefault(record.owner, {})[record.image_id] = record

    async def get(self, owner: str, image_id: str) -> ImageRecord:
        record = self._owners.get(owner, {}).get(image_id)
        if record is None:
            raise image_not_found(image_id)
        return record

    async def page(self, owner: str, cursor: str | None = None, limit: int = 50) -> ImagePage:
        ordered = sorted(self._owners.get(owner, {}).values(), key=newest_first)
        if cursor is not None:
            created, image_id = decode_cursor(cursor)
            ordered = [r for r in ordered if newest_first(r) > (-created, image_id)]
        records = tuple(ordered[:limit])
        more = len(ordered) > limit
        return ImagePage(records, encode_cursor(records[-1]) if more and records else None)

    async def remove(self, owner: str, image_id: str) -> None:
        self._owners.get(owner, {}).pop(image_id, None)

