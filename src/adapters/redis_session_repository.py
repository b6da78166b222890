"""RedisSessionRepository: edit sessions in Redis, shared by every server process pointed at the same store.

Key layout (every key starts with the namespace, so one Redis can serve other things too; <owner> is
percent-encoded, see redis_common.owner_part):

    {ns}:session:<owner>:<id>   string, the session's own fields (state_codec.session_to_json)
    {ns}:turns:<owner>:<id>     list, one state_codec.turn_to_json per turn, in order (turn n at index n-1)
    {ns}:sessions:<owner>       sorted set, session id -> last use (clock seconds); the LRU order

The idle TTL is Redis key expiry: every use (add, get, append) runs PEXPIRE on the session's two keys and the
owner's set, so an idle session vanishes on Redis's own clock, in any process. The set can hold ids whose keys
expired; listing and adding drop them. Every operation is one Lua script (redis_session_scripts), so it is
atomic against other processes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from redis.asyncio import Redis

from gpt_image_2_mcp.domain.ports import SessionRepository
from gpt_image_2_mcp.domain.sessions import EditSession, Turn

from . import redis_session_scripts as scripts
from .in_memory_session_repository import moved_on, not_found
from .redis_common import DEFAULT_NAMESPACE, SchemaCheck, guarded, owner_part
from .state_codec import session_from_json, session_to_json, turn_from_json, turn_to_json


class RedisSessionRepository(SessionRepository):
    """`max_sessions=0` means no cap; `ttl_ms=0` means sessions never expire. `clock` gives the LRU order only
    (expiry runs on Redis's clock); processes sharing a store should have roughly synchronised clocks."""

    def __init__(
        self,
        client: Redis,
        max_sessions: int = 20,
        ttl_ms: int = 3_600_000,
        namespace: str = DEFAULT_NAMESPACE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._max = max_sessions
        self._ttl_ms = ttl_ms
        self._namespace = namespace
        self._clock = clock
        self._schema = SchemaCheck(client, namespace)
        self._add = client.register_script(scripts.ADD)
        self._get = client.register_script(scripts.GET)
        self._append = client.register_script(scripts.APPEND)
        self._remove = client.register_script(scripts.REMOVE)
        self._list = client.register_script(scripts.LIST)

    @guarded(writes=True)
    async def add(self, session: EditSession) -> None:
        meta = json.dumps(session_to_json(session))
        turns = [json.dumps(turn_to_json(turn)) for turn in session.turns]
        await self._add(keys=self._keys(session.owner, session.id), args=[
            *self._use(session.id), self._max, *self._prefixes(session.owner), meta, *turns])

    @guarded(writes=False)
    async def get(self, owner: str, session_id: str) -> EditSession:
        found = await self._get(keys=self._keys(owner, session_id), args=self._use(session_id))
        if found is None:
            raise not_found(session_id)
        return _decode(found)

    @guarded(writes=True)
    async def append_turn(self, owner: str, session_id: str, turn: Turn) -> None:
        result = await self._append(keys=self._keys(owner, session_id), args=[
            *self._use(session_id), turn.turn - 1, json.dumps(turn_to_json(turn))])
        if result is None:
            raise not_found(session_id)
        appended, stored = result
        if not appended:
            raise moved_on(session_id, int(stored))

    @guarded(writes=True)
    async def remove(self, owner: str, session_id: str) -> EditSession:
        found = await self._remove(keys=self._keys(owner, session_id), args=[session_id])
        if found is None:
            raise not_found(session_id)
        return _decode(found)

    @guarded(writes=False)
    async def list(self, owner: str) -> list[EditSession]:
        found = await self._list(keys=[self._keys(owner, "")[2]], args=self._prefixes(owner))
        return [_decode(item) for item in found]

    def _keys(self, owner: str, session_id: str) -> list[str]:
        """The session's meta key, its turns key, and its owner's LRU set (the scripts' KEYS[1..3])."""
        meta, turns = (prefix + session_id for prefix in self._prefixes(owner))
        return [meta, turns, f"{self._namespace}:sessions:{owner_part(owner)}"]

    def _prefixes(self, owner: str) -> list[str]:
        """The meta and turns key of an owner's session, less its id: scripts that walk the LRU set add it."""
        return [f"{self._namespace}:{kind}:{owner_part(owner)}:" for kind in ("session", "turns")]

    def _use(self, session_id: str) -> list[object]:
        """The scripts' first ARGV: the idle TTL, the LRU score of a use now, and the session id."""
        return [self._ttl_ms, self._clock(), session_id]


def _decode(found: Sequence[Any]) -> EditSession:
    """A session from a script's {meta JSON, [turn JSON...]} reply (bytes or str: json.loads takes both)."""
    meta, turns = found
    return session_from_json(json.loads(meta), [turn_from_json(json.loads(turn)) for turn in turns])
