"""RedisImageCatalogue: the image catalogue in Redis, so any server process can serve any image later.

Key layout (<owner> percent-encoded, see redis_common.owner_part):

    {ns}:image:<owner>:<image id>   hash: `record` = state_codec.record_to_json, `order` = its member below
    {ns}:images:<owner>             sorted set, every member at score 0: order_member(created_at, image id)

Order: all members share one score, so Redis keeps them in byte order, and a member is built so that byte
order *is* the catalogue's order (created_at descending, then id ascending, as state_codec.newest_first): 16
hex digits of created_at mapped to an integer that falls as the time rises, then the id. A page is then one
ZRANGEBYLEX from just after the cursor's member, exact even when many images share a created_at, and new
images never shift later pages. The record keeps its member so that re-adding an id with another time, or
removing it, can find the old member to drop. Records never expire: the catalogue is durable.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence

from redis.asyncio import Redis

from gpt_image_2_mcp.domain.catalogue import ImagePage, ImageRecord
from gpt_image_2_mcp.domain.ports import ImageCatalogue

from .in_memory_image_catalogue import image_not_found
from .redis_common import DEFAULT_NAMESPACE, SchemaCheck, as_text, guarded, owner_part
from .state_codec import decode_cursor, encode_cursor, record_from_json, record_to_json

_ALL_BITS = (1 << 64) - 1

# KEYS: record key, owner set, record key, owner set, ...; ARGV: member, record JSON, member, record JSON, ...
_ADD = """
for i = 1, #KEYS, 2 do
  local old = redis.call('HGET', KEYS[i], 'order')
  if old and old ~= ARGV[i] then redis.call('ZREM', KEYS[i + 1], old) end
  redis.call('HSET', KEYS[i], 'order', ARGV[i], 'record', ARGV[i + 1])
  redis.call('ZADD', KEYS[i + 1], 0, ARGV[i])
end
return #KEYS / 2
"""

# KEYS: record key, owner set.
_REMOVE = """
local old = redis.call('HGET', KEYS[1], 'order')
if old then redis.call('ZREM', KEYS[2], old) end
return redis.call('DEL', KEYS[1])
"""

# KEYS: owner set, record key...; ARGV: member... Drops a member only if its record is still gone, so an image
# re-added meanwhile keeps its place.
_DROP_STALE = """
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then redis.call('ZREM', KEYS[1], ARGV[i - 1]) end
end
return 1
"""


def order_member(created_at: float, image_id: str) -> str:
    """The sorted-set member of an image: byte order of members = newest first, then id ascending."""
    bits = struct.unpack(">Q", struct.pack(">d", created_at + 0.0))[0]  # + 0.0 turns -0.0 into 0.0
    rising = bits ^ _ALL_BITS if bits >> 63 else bits | 1 << 63  # IEEE 754 bits as an integer that rises with x
    return f"{rising ^ _ALL_BITS:016x}:{image_id}"


def _image_id(member: str) -> str:
    return member[17:]  # after 16 hex digits and ':'


class RedisImageCatalogue(ImageCatalogue):
    """Cursors are state_codec's (created_at|image id of a page's last record), the same as every store."""

    def __init__(self, client: Redis, namespace: str = DEFAULT_NAMESPACE) -> None:
        self._client = client
        self._namespace = namespace
        self._schema = SchemaCheck(client, namespace)
        self._add = client.register_script(_ADD)
        self._remove = client.register_script(_REMOVE)
        self._drop_stale = client.register_script(_DROP_STALE)

    @guarded(writes=True)
    async def add(self, records: Sequence[ImageRecord]) -> None:
        keys: list[str] = []
        args: list[str] = []
        for record in records:
            keys += [self._record_key(record.owner, record.image_id), self._set_key(record.owner)]
            args += [order_member(record.created_at, record.image_id), json.dumps(record_to_json(record))]
        if keys:
            await self._add(keys=keys, args=args)  # one script: the whole batch or nothing

    @guarded(writes=False)
    async def get(self, owner: str, image_id: str) -> ImageRecord:
        found = await self._client.hget(self._record_key(owner, image_id), "record")
        if found is None:
            raise image_not_found(image_id)
        return record_from_json(json.loads(found))

    @guarded(writes=False)
    async def page(self, owner: str, cursor: str | None = None, limit: int = 50) -> ImagePage:
        limit = max(limit, 0)
        bound = "-" if cursor is None else "(" + order_member(*decode_cursor(cursor))
        records: list[ImageRecord] = []
        while True:  # more than once only if members outlived their records (see _records)
            wanted = limit - len(records)
            members = await self._client.zrangebylex(self._set_key(owner), bound, "+", start=0, num=wanted + 1)
            members = [as_text(member) for member in members]
            records += await self._records(owner, members[:wanted])
            if len(members) <= wanted:
                return ImagePage(tuple(records))
            if len(records) == limit:
                return ImagePage(tuple(records), encode_cursor(records[-1]) if records else None)
            bound = "(" + members[wanted - 1]

    @guarded(writes=True)
    async def remove(self, owner: str, image_id: str) -> None:
        await self._remove(keys=[self._record_key(owner, image_id), self._set_key(owner)])

    async def _records(self, owner: str, members: list[str]) -> list[ImageRecord]:
        """The records of `members`, in order. A member whose record is gone (removed between the two reads, or
        evicted by a Redis memory policy) is dropped from the set, so the next page does not meet it again."""
        pipe = self._client.pipeline(transaction=False)
        for member in members:
            pipe.hget(self._record_key(owner, _image_id(member)), "record")
        found = await pipe.execute() if members else []
        stale = [member for member, data in zip(members, found, strict=True) if data is None]
        if stale:
            keys = [self._record_key(owner, _image_id(member)) for member in stale]
            await self._drop_stale(keys=[self._set_key(owner), *keys], args=stale)
        return [record_from_json(json.loads(data)) for data in found if data is not None]

    def _record_key(self, owner: str, image_id: str) -> str:
        return f"{self._namespace}:image:{owner_part(owner)}:{image_id}"

    def _set_key(self, owner: str) -> str:
        return f"{self._namespace}:images:{owner_part(owner)}"
