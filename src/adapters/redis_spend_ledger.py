"""RedisSpendLedger: the spend ledger in Redis, so a daily budget holds across every server process on the store.

Key layout (<owner> and <call id> percent-encoded, see redis_common.owner_part):

    {ns}:spend:<owner>:<call id>     hash: tool, estimated_usd, at, and actual_usd once the call has finished
    {ns}:spend-by-time:<owner>       sorted set: call id -> at (clock seconds), for the range reads

`record` is one Lua script, so another process never sees an entry's hash without its member (or the other way
round), and since the member is the call id, an estimate and its actual cost recorded together leave one member.
`book_within` is an optimistic transaction: it WATCHes the owner's set and the hashes it sums, and books with
that script inside MULTI/EXEC, so a booking or a settled cost elsewhere in between makes it sum again.

Retention: an entry lives RETENTION_DAYS after its `at` (EXPIREAT on its hash), then Redis frees it unattended.
Budgets need today only and reports a few weeks at most, so 400 days keeps over a year of history (a year's
totals still add up) without letting a long-lived store grow for ever. Each record also trims the owner's set to
the same window, measured from its newest entry, and the set expires with that entry; a read skips and drops
members whose hash is gone (expired, or evicted by a memory policy).
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from gpt_image_2_mcp.domain.ports import SpendLedger
from gpt_image_2_mcp.domain.spend import DAY_S, Booking, DayTotal, SpendEntry

from .in_memory_spend_ledger import day_totals, spent_of
from .redis_common import DEFAULT_NAMESPACE, SchemaCheck, as_text, guarded, owner_part
from .redis_job_scripts import DROP_STALE

RETENTION_DAYS = 400
RETENTION_S = RETENTION_DAYS * DAY_S

FIELDS = ("tool", "estimated_usd", "actual_usd", "at")
"""The hash fields a read asks for, in this order."""

RECORD = """
-- KEYS: 1 the entry's hash, 2 the owner's set
-- ARGV: 1 call id, 2 at, 3 tool, 4 estimated_usd, 5 actual_usd ('' = not known), 6 retention in seconds
-- The hash is replaced whole, so an entry recorded again without an actual cost has none.
local retention = tonumber(ARGV[6])
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'tool', ARGV[3], 'estimated_usd', ARGV[4], 'at', ARGV[2])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'actual_usd', ARGV[5]) end
redis.call('EXPIREAT', KEYS[1], math.ceil(tonumber(ARGV[2]) + retention))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
local newest = tonumber(redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. (newest - retention))
redis.call('EXPIREAT', KEYS[2], math.ceil(newest + retention))
return 1
"""


class RedisSpendLedger(SpendLedger):
    """Reads take the owner's call ids since a time from the sorted set, then their hashes in one pipeline, and
    sum in Python (in_memory_spend_ledger's rules): Redis has no SUM, and a day's calls are few."""

    def __init__(self, client: Redis, namespace: str = DEFAULT_NAMESPACE) -> None:
        self._client = client
        self._namespace = namespace
        self._schema = SchemaCheck(client, namespace)
        self._record = client.register_script(RECORD)
        self._drop_stale = client.register_script(DROP_STALE)

    @guarded(writes=True)
    async def record(self, entry: SpendEntry) -> None:
        """Store an entry, replacing an earlier one with the same owner and call_id."""
        await self._store(entry, self._client)

    @guarded(writes=True)
    async def book_within(self, entry: SpendEntry, since: float, budget_usd: float | None) -> Booking:
        """Sum and book under WATCH; redis-py runs `attempt` again whenever EXEC finds a watched key changed."""
        index = self._set_key(entry.owner)

        async def attempt(pipe: Pipeline) -> Booking:
            calls = [as_text(m) for m in await pipe.zrangebyscore(index, repr(since), "+inf")]
            # Watched before they are read: a cost settled after this point aborts the EXEC.
            await pipe.watch(index, *(self._entry_key(entry.owner, call) for call in calls))
            booking = Booking.judged(spent_of(await self._read(entry.owner, calls, since)), entry, budget_usd)
            if booking.booked:
                pipe.multi()
                await self._store(entry, pipe)
            return booking

        return await self._client.transaction(attempt, index, value_from_callable=True)

    @guarded(writes=False)
    async def spent_since(self, owner: str, since: float) -> float:
        """What the owner's calls since `since` count against a budget."""
        return spent_of(await self._entries(owner, since))

    @guarded(writes=False)
    async def totals(self, owner: str, since: float) -> list[DayTotal]:
        """Per UTC day since `since`, oldest first: number of calls, estimated and actual cost."""
        return day_totals(await self._entries(owner, since))

    async def _store(self, entry: SpendEntry, client: Redis | Pipeline) -> None:
        """The RECORD script on `client` (a pipeline inside MULTI only queues it)."""
        actual = "" if entry.actual_usd is None else repr(entry.actual_usd)
        await self._record(
            keys=[self._entry_key(entry.owner, entry.call_id), self._set_key(entry.owner)],
            args=[entry.call_id, repr(entry.at), entry.tool, repr(entry.estimated_usd), actual, RETENTION_S],
            client=client)

    async def _entries(self, owner: str, since: float) -> list[SpendEntry]:
        """The owner's entries at or after `since`."""
        calls = await self._client.zrangebyscore(self._set_key(owner), repr(since), "+inf")
        return await self._read(owner, [as_text(m) for m in calls], since)

    async def _read(self, owner: str, calls: list[str], since: float) -> list[SpendEntry]:
        """The entries of these call ids at or after `since`. Members whose hash is gone are left out and
        dropped from the owner's set."""
        if not calls:
            return []
        index = self._set_key(owner)
        pipe = self._client.pipeline(transaction=False)
        for call in calls:
            pipe.hmget(self._entry_key(owner, call), FIELDS)
        found = await pipe.execute()
        entries = [entry_of(owner, call, values) for call, values in zip(calls, found, strict=True)]
        stale = [call for call, entry in zip(calls, entries, strict=True) if entry is None]
        if stale:
            # The script drops a member only if its hash is still gone: a record meanwhile keeps its place.
            await self._drop_stale(keys=[index, *(self._entry_key(owner, call) for call in stale)], args=stale)
        # A hash recorded again between the two reads may have moved before `since`: keep the range exact.
        return [e for e in entries if e is not None and e.at >= since]

    def _entry_key(self, owner: str, call_id: str) -> str:
        # The call id is percent-encoded like the owner: a caller-chosen id may hold ':' or '{'.
        return f"{self._namespace}:spend:{owner_part(owner)}:{owner_part(call_id)}"

    def _set_key(self, owner: str) -> str:
        return f"{self._namespace}:spend-by-time:{owner_part(owner)}"


def entry_of(owner: str, call_id: str, values: list[bytes | str | None]) -> SpendEntry | None:
    """The entry an HMGET of FIELDS returned; None if the hash is gone."""
    tool, estimated, actual, at = values
    if tool is None or estimated is None or at is None:
        return None
    return SpendEntry(owner=owner, call_id=call_id, tool=as_text(tool), estimated_usd=float(estimated),
                      at=float(at), actual_usd=None if actual is None else float(actual))

