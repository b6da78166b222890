"""SqliteImageCatalogue: the image catalogue in a SQLite file, shared by every process that opens it."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

from gpt_image_2_mcp.domain.catalogue import ImagePage, ImageRecord
from gpt_image_2_mcp.domain.ports import ImageCatalogue

from .in_memory_image_catalogue import image_not_found
from .sqlite_database import SqliteDatabase
from .state_codec import decode_cursor, encode_cursor, record_from_json, record_to_json

PAGE_AFTER = (
    # Keyset pagination in the order of state_codec.newest_first: created_at DESC, then image_id ASC. The index
    # images_newest_first has exactly this order, and `created_at <= ?` lets SQLite seek to the cursor in it, so
    # a page reads `limit + 1` index entries however deep it is, and sorts nothing.
    "SELECT data FROM images WHERE owner = ? AND created_at <= ? AND (created_at < ? OR image_id > ?) "
    "ORDER BY created_at DESC, image_id ASC LIMIT ?"
)
FIRST_PAGE = "SELECT data FROM images WHERE owner = ? ORDER BY created_at DESC, image_id ASC LIMIT ?"


class SqliteImageCatalogue(ImageCatalogue):
    """The embedded default catalogue: one row per image, the record as JSON. Cursors are the last
    (created_at, id) of a page, so images added between pages never shift later pages."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def add(self, records: Sequence[ImageRecord]) -> None:
        """Catalogue the images in one transaction; a record with a known id replaces the old one."""
        rows = [(r.owner, r.image_id, r.created_at, json.dumps(record_to_json(r), separators=(",", ":")))
                for r in records]

        def add(connection: sqlite3.Connection) -> None:
            connection.executemany(
                "INSERT OR REPLACE INTO images (owner, image_id, created_at, data) VALUES (?, ?, ?, ?)", rows)

        await self._db.write(add)

    async def get(self, owner: str, image_id: str) -> ImageRecord:
        """One of the owner's images. Raises ImageNotFound."""

        def get(connection: sqlite3.Connection) -> str | None:
            row = connection.execute("SELECT data FROM images WHERE owner = ? AND image_id = ?",
                                     (owner, image_id)).fetchone()
            return row[0] if row else None

        data = await self._db.read(get)
        if data is None:
            raise image_not_found(image_id)
        return record_from_json(json.loads(data))

    async def page(self, owner: str, cursor: str | None = None, limit: int = 50) -> ImagePage:
        """Up to `limit` of the owner's images, newest first, from just after `cursor`."""
        if cursor is None:
            query, parameters = FIRST_PAGE, (owner, limit + 1)
        else:
            created_at, image_id = decode_cursor(cursor)  # InvalidRequest before touching the file
            query, parameters = PAGE_AFTER, (owner, created_at, created_at, image_id, limit + 1)

        def page(connection: sqlite3.Connection) -> list[str]:
            return [data for (data,) in connection.execute(query, parameters)]

        # One row more than asked for says whether another page follows.
        found = [record_from_json(json.loads(data)) for data in await self._db.read(page)]
        records = tuple(found[:limit])
        more = len(found) > limit
        return ImagePage(records, encode_cursor(records[-1]) if more and records else None)

    async def remove(self, owner: str, image_id: str) -> None:
        """Forget the image's record (its file stays); nothing happens if it is unknown."""

        def remove(connection: sqlite3.Connection) -> None:
            connection.execute("DELETE FROM images WHERE owner = ? AND image_id = ?", (owner, image_id))

        await self._db.write(remove)
