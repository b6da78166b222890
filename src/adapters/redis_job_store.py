"""RedisJobStore: jobs in Redis, so any server process can report on a job another one runs.

Key layout (<owner>, <fingerprint> and <key> percent-encoded, see redis_common.owner_part):

    {ns}:job:<owner>:<job id>             hash: `job` = state_codec.job_to_json, `entry` = its expiry-set member,
                                          and what other processes asked of it: `cancel` ('1' once a cancel
                                          is requested), `elsewhere` (its callers_elsewhere)
    {ns}:jobs:<owner>                     sorted set, every member at score 0: order_member(created_at, job id)
    {ns}:jobs-by-fp:<owner>:<fingerprint> the same members, for the owner's jobs with that fingerprint
    {ns}:jobs-by-key:<owner>:<key>        the same members, for the owner's jobs with that idempotency key
    {ns}:jobs-expiry                      sorted set: entry -> expiry time (clock seconds), jobs with a ttl only

Requests: `cancel` and `elsewhere` are fields of their own, never in the JSON the holder saves whole, so a
holder's save cannot write over them; reads put them into the job.

Order: the members are redis_image_catalogue's, whose byte order is newest first, then id ascending; a page or
a find is a ZRANGEBYLEX, exact when many jobs share a created_at.

Expiry: the job hash expires (PEXPIRE) when its ttl runs out, so Redis frees it unattended; the sets do not,
and may name jobs that are gone. Reads skip those members and drop them; `sweep` drops the members of every
job whose time is up, found through the expiry set. An entry is the JSON of what names a job's members
(owner, id, created_at, fingerprint, key), so a sweep can find them after the hash itself expired.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from gpt_image_2_mcp.domain.jobs import Job, JobPage, JobStatus, Precedents
from gpt_image_2_mcp.domain.ports import JobStore

from . import redis_job_scripts as scripts
from .in_memory_job_store import job_not_found
from .redis_common import DEFAULT_NAMESPACE, SchemaCheck, as_text, guarded, owner_part
from .redis_image_catalogue import order_member
from .state_codec import decode_cursor, encode_job_cursor, job_from_json, job_to_json

READ_AHEAD = 10
"""The fewest members a find or page reads at a time, so skipping gone or unmatched jobs takes few round trips."""

SWEEP_BATCH = 200
"""Expired jobs forgotten per sweep script: each batch blocks Redis only briefly."""


class RedisJobStore(JobStore):
    """`clock` says what "now" is: for leaving expired jobs out of reads, and for how long a saved job has left
    to live (its Redis expiry). Processes sharing a store should have roughly synchronised clocks."""

    def __init__(self, client: Redis, namespace: str = DEFAULT_NAMESPACE,
                 clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._keys = JobKeys(namespace)
        self._clock = clock
        self._schema = SchemaCheck(client, namespace)
        self._save = client.register_script(scripts.SAVE)
        self._drop_stale = client.register_script(scripts.DROP_STALE)
        self._sweep = client.register_script(scripts.SWEEP)
        self._count_caller = client.register_script(scripts.COUNT_CALLER)

    async def add(self, job: Job) -> None:
        """Store a new job (a known id is replaced, as by save)."""
        await self.save(job)

    @guarded(writes=True)
    async def save(self, job: Job) -> None:
        """Store the job as it is now, whole, with its index members and its remaining time to live."""
        keys = self._keys.of_entry(entry_of(job))
        old = await self._save(**self._save_arguments(job))
        if old is not None:
            await self._forget_members(self._keys.of_entry(as_text(old)), keys)

    @guarded(writes=True)
    async def add_unless_overtaken(self, job: Job, seen: Precedents) -> bool:
        """Under WATCH on the sets of the job's fingerprint and key: a job another process adds to them between
        the look and the write makes redis-py look again, and this one is then overtaken."""
        keys = self._keys.of_entry(entry_of(job))
        watched = [keys.fingerprint_set] + ([keys.key_set] if keys.key_set else [])

        async def attempt(pipe: Pipeline) -> bool:
            by_key = None if keys.key_set is None else await self._newest(job.owner, keys.key_set, seen.key_since)
            by_fingerprint = None if seen.fingerprint_since is None else await self._newest(
                job.owner, keys.fingerprint_set, seen.fingerprint_since)
            if seen.overtaken(by_key, by_fingerprint):
                return False
            pipe.multi()
            await self._save(**self._save_arguments(job), client=pipe)  # queued: runs at EXEC
            return True

        return await self._client.transaction(attempt, *watched, value_from_callable=True)

    def _save_arguments(self, job: Job) -> dict[str, list[Any]]:
        """The SAVE script's keys and arguments for `job`."""
        expires = expires_at(job)
        left_ms = "" if expires is None else max(1, math.ceil((expires - self._clock()) * 1000))
        entry = entry_of(job)
        keys = self._keys.of_entry(entry)
        return {"keys": [*keys.sets_of_job(), self._keys.expiry], "args": [
            json.dumps(job_to_json(job)), keys.member, entry, "1" if job.idempotency_key is not None else "0",
            "" if expires is None else repr(expires), left_ms]}

    async def _newest(self, owner: str, index: str, since: float) -> str | None:
        """The id of the newest live job in the set `index` created at or after `since`."""
        found = await self._collect(owner, index, ("-", created_at_or_after(since)), 1)
        return found[0].job_id if found else None

    @guarded(writes=True)
    async def request_cancel(self, owner: str, job_id: str) -> Job:
        """Under WATCH on the job's hash: a save by the running process between the read and the write makes
        redis-py read it again, so a job that finished meanwhile is never written back as working."""
        key = self._keys.job(owner, job_id)

        async def attempt(pipe: Pipeline) -> Job | None:
            job = job_of(await pipe.hmget(key, JOB_FIELDS))
            if job is None or job.expired(self._clock()) or job.status is not JobStatus.WORKING:
                return job
            job.cancel_requested = True
            pipe.multi()
            pipe.hset(key, "cancel", "1")
            return job

        job = await self._client.transaction(attempt, key, value_from_callable=True)
        if job is None or job.expired(self._clock()):
            raise job_not_found(job_id)
        return job

    @guarded(writes=True)
    async def count_caller_elsewhere(self, owner: str, job_id: str, change: int) -> None:
        await self._count_caller(keys=[self._keys.job(owner, job_id)], args=[change])

    @guarded(writes=False)
    async def get(self, owner: str, job_id: str) -> Job:
        """One of the owner's live jobs. Raises JobNotFound."""
        job = job_of(await self._client.hmget(self._keys.job(owner, job_id), JOB_FIELDS))
        if job is None or job.expired(self._clock()):
            raise job_not_found(job_id)
        return job

    @guarded(writes=False)
    async def page(self, owner: str, cursor: str | None = None, limit: int = 50) -> JobPage:
        """Up to `limit` of the owner's live jobs, newest first, from just after `cursor`."""
        limit = max(limit, 0)
        start = "-" if cursor is None else "(" + order_member(*decode_cursor(cursor))
        found = await self._collect(owner, self._keys.owner_set(owner), (start, "+"), limit + 1)
        jobs = tuple(found[:limit])
        more = len(found) > limit  # one more than asked for says whether a page follows
        return JobPage(jobs, encode_job_cursor(jobs[-1]) if more and jobs else None)

    @guarded(writes=False)
    async def find(
        self, owner: str, *, fingerprint: str | None = None, idempotency_key: str | None = None,
        since: float = 0.0,
    ) -> Job | None:
        """The owner's newest live job created at or after `since` that has the fingerprint and the key given."""
        if idempotency_key is not None:  # the narrower index when both are given
            index = self._keys.key_set(owner, idempotency_key)
        elif fingerprint is not None:
            index = self._keys.fingerprint_set(owner, fingerprint)
        else:
            index = self._keys.owner_set(owner)

        def wanted(job: Job) -> bool:
            return ((fingerprint is None or job.fingerprint == fingerprint)
                    and (idempotency_key is None or job.idempotency_key == idempotency_key))

        found = await self._collect(owner, index, ("-", created_at_or_after(since)), 1, wanted)
        return found[0] if found else None

    @guarded(writes=True)
    async def sweep(self, now: float) -> int:
        """Forget the jobs of every owner whose ttl ran out before `now`; returns how many."""
        swept = 0
        while True:
            entries = await self._client.zrangebyscore(self._keys.expiry, "-inf", f"({now!r}", start=0,
                                                       num=SWEEP_BATCH)
            keys: list[str] = [self._keys.expiry]
            args: list[Any] = [repr(now)]
            for entry in map(as_text, entries):
                job = self._keys.of_entry(entry)
                keys += job.sets_of_job()
                args += [entry, job.member, "1" if job.key_set is not None else "0"]
            done = int(await self._sweep(keys=keys, args=args)) if entries else 0
            swept += done
            if len(entries) < SWEEP_BATCH or done < len(entries):  # the rest was saved again meanwhile
                return swept

    async def _collect(
        self, owner: str, index: str, bounds: tuple[str, str], count: int,
        wanted: Callable[[Job], bool] = lambda job: True,
    ) -> list[Job]:
        """Up to `count` live jobs `wanted` accepts, in the order of the set `index`, between `bounds`
        (ZRANGEBYLEX's). Reads on past members whose job is gone, expired or not wanted."""
        start, stop = bounds
        now = self._clock()
        found: list[Job] = []
        while len(found) < count:
            asked = max(count - len(found), READ_AHEAD)
            members = [as_text(m) for m in await self._client.zrangebylex(index, start, stop, start=0, num=asked)]
            for member, job in zip(members, await self._load(owner, index, members), strict=True):
                # A member whose job now has another created_at is a leftover of a save that moved it.
                if job is not None and order_member(job.created_at, job.job_id) == member \
                        and not job.expired(now) and wanted(job):
                    found.append(job)
            if len(members) < asked:
                break
            start = "(" + members[-1]
        return found[:count]

    async def _load(self, owner: str, index: str, members: list[str]) -> list[Job | None]:
        """The jobs `members` name, None for those gone (expired in Redis, or evicted by a memory policy); the
        members of gone jobs are dropped from `index`, so later reads do not meet them again."""
        pipe = self._client.pipeline(transaction=False)
        for member in members:
            pipe.hmget(self._keys.job(owner, job_id_of(member)), JOB_FIELDS)
        found = [job_of(fields) for fields in await pipe.execute()] if members else []
        stale = [member for member, job in zip(members, found, strict=True) if job is None]
        if stale:
            hashes = [self._keys.job(owner, job_id_of(member)) for member in stale]
            await self._drop_stale(keys=[index, *hashes], args=stale)
        return found

    async def _forget_members(self, old: EntryKeys, new: EntryKeys) -> None:
        """After a save moved a job (new created_at, fingerprint or key): drop the members its old entry put in
        sets the new one does not use. Not atomic with the save: the job runner serialises the saves of a job, so
        nothing puts these members back meanwhile, and one left behind is skipped by reads (they check each
        member against its job)."""
        pipe = self._client.pipeline(transaction=False)
        for index, member in set(old.memberships()) - set(new.memberships()):
            pipe.zrem(index, member)
        await pipe.execute()


class EntryKeys:
    """The keys and the order member of one job, as its entry names them."""

    def __init__(self, keys: JobKeys, owner: str, job_id: str, created_at: float, fingerprint: str,
                 idempotency_key: str | None) -> None:
        self.job = keys.job(owner, job_id)
        self.owner_set = keys.owner_set(owner)
        self.fingerprint_set = keys.fingerprint_set(owner, fingerprint)
        self.key_set = None if idempotency_key is None else keys.key_set(owner, idempotency_key)
        self.member = order_member(created_at, job_id)

    def sets_of_job(self) -> list[str]:
        """The scripts' four keys of a job: its hash, its owner's set, its fingerprint set, its key set (its
        hash again in the place of the key set if it has no key: a key is named, never touched)."""
        return [self.job, self.owner_set, self.fingerprint_set, self.key_set or self.job]

    def memberships(self) -> list[tuple[str, str]]:
        """Every (set, member) the job is in."""
        sets = [self.owner_set, self.fingerprint_set] + ([self.key_set] if self.key_set else [])
        return [(index, self.member) for index in sets]


class JobKeys:
    """The names of a namespace's job keys."""

    def __init__(self, namespace: str) -> None:
        self._namespace = namespace
        self.expiry = f"{namespace}:jobs-expiry"

    def job(self, owner: str, job_id: str) -> str:
        return f"{self._namespace}:job:{owner_part(owner)}:{job_id}"

    def owner_set(self, owner: str) -> str:
        return f"{self._namespace}:jobs:{owner_part(owner)}"

    def fingerprint_set(self, owner: str, fingerprint: str) -> str:
        return f"{self._namespace}:jobs-by-fp:{owner_part(owner)}:{owner_part(fingerprint)}"

    def key_set(self, owner: str, idempotency_key: str) -> str:
        # Percent-encoded like an owner: a caller's key may hold ':' or '{'.
        return f"{self._namespace}:jobs-by-key:{owner_part(owner)}:{owner_part(idempotency_key)}"

    def of_entry(self, entry: str) -> EntryKeys:
        return EntryKeys(self, *json.loads(entry))


JOB_FIELDS = ("job", "cancel", "elsewhere")
"""The fields of a job's hash that make the job."""


def job_of(fields: list[Any]) -> Job | None:
    """The job from its hash's JOB_FIELDS, None if it is gone."""
    data, cancel, elsewhere = fields
    if data is None:
        return None
    job = job_from_json(json.loads(data))
    job.cancel_requested = job.cancel_requested or cancel is not None  # (in the JSON: asked by an older version)
    job.callers_elsewhere = int(elsewhere or 0)
    return job


def entry_of(job: Job) -> str:
    """The job's member of the expiry set: what names its other members, so a sweep can drop them unaided."""
    return json.dumps([job.owner, job.job_id, job.created_at, job.fingerprint, job.idempotency_key],
                      separators=(",", ":"))


def expires_at(job: Job) -> float | None:
    """When the job's ttl runs out, in clock seconds (Job.expired's rule); None if it never does."""
    return None if job.ttl_ms is None else job.created_at + job.ttl_ms / 1000


def created_at_or_after(since: float) -> str:
    """The ZRANGEBYLEX upper bound of the members created at or after `since`: each of those starts with the
    16 digits of its time, which sort at or before those of `since`, then ':'; and ';' follows ':'."""
    return "(" + order_member(since, "")[:16] + ";"


def job_id_of(member: str) -> str:
    return member[17:]  # after 16 hex digits and ':'
