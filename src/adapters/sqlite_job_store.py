"""SqliteJobStore: jobs in a SQLite file (the `jobs` table of migration 2), shared by every process that opens it."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from gpt_image_2_mcp.domain.jobs import Job, JobPage, JobStatus, Precedents
from gpt_image_2_mcp.domain.ports import JobStore

from .in_memory_job_store import job_not_found
from .sqlite_database import SqliteDatabase
from .state_codec import decode_cursor, encode_job_cursor, job_from_json, job_to_json

LIVE = "(expires_at IS NULL OR expires_at >= :now)"
"""A job whose ttl has not run out (Job.expired's rule). Reads apply it, so a job is gone at its expiry even if
no sweep has run since."""

NEWEST_FIRST = "ORDER BY created_at DESC, job_id ASC"
"""The order of the in-memory store: newest first, ties by id. Every index on `jobs` ends in this order."""

UPSERT = (
    # The whole row (save keeps what it read of the requests of other processes in its own transaction).
    "INSERT OR REPLACE INTO jobs (owner, job_id, created_at, fingerprint, idempotency_key, expires_at, data) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
GET = f"SELECT data FROM jobs WHERE owner = :owner AND job_id = :job_id AND {LIVE}"
GET_ANY = "SELECT data FROM jobs WHERE owner = ? AND job_id = ?"
"""The job's row whether or not its ttl ran out: a write keeps what it holds."""
UPDATE_DATA = "UPDATE jobs SET data = ? WHERE owner = ? AND job_id = ?"
REQUESTS_OF = ("SELECT json_extract(data, '$.cancel_requested'), json_extract(data, '$.callers_elsewhere') "
               "FROM jobs WHERE owner = ? AND job_id = ?")
"""What other processes asked of a job, read without decoding the whole job."""
FIRST_PAGE = f"SELECT data FROM jobs WHERE owner = :owner AND {LIVE} {NEWEST_FIRST} LIMIT :limit"
PAGE_AFTER = (
    # Keyset pagination as in sqlite_image_catalogue: `created_at <= ?` seeks to the cursor in jobs_newest_first.
    "SELECT data FROM jobs WHERE owner = :owner AND created_at <= :created_at "
    f"AND (created_at < :created_at OR job_id > :job_id) AND {LIVE} {NEWEST_FIRST} LIMIT :limit"
)
SWEEP = "DELETE FROM jobs WHERE expires_at < :now"


class SqliteJobStore(JobStore):
    """One row per job: the job as state_codec JSON, and the columns the queries search by copied out of it.

    `clock` says what "now" is for the reads that leave out expired jobs; `sweep` takes its time from the caller.
    """

    def __init__(self, db: SqliteDatabase, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock

    async def add(self, job: Job) -> None:
        """Store a new job (a known id is replaced, as by save)."""
        await self.save(job)

    async def save(self, job: Job) -> None:
        """Store the job as it is now, whole, but for the requests of other processes: read and kept in the same
        write transaction, so a cancel asked for between the holder's read and its save is not lost."""
        as_it_is = row_of(job)  # encoded before the write lock is taken: usually the requests are as the job says

        def save(connection: sqlite3.Connection) -> None:
            stored = connection.execute(REQUESTS_OF, (job.owner, job.job_id)).fetchone()
            kept = job if stored is None else job.with_requests(bool(stored[0]), stored[1] or 0)
            connection.execute(UPSERT, as_it_is if kept is job else row_of(kept))

        await self._db.write(save)

    async def add_unless_overtaken(self, job: Job, seen: Precedents) -> bool:
        """Look and store in one write transaction: another process's add waits for it, or it for that one."""
        now = self._clock()
        row = row_of(job)  # encoded before the write lock is taken

        def newest(connection: sqlite3.Connection, since: float, fingerprint: str | None = None,
                   idempotency_key: str | None = None) -> str | None:
            query, parameters = find_query(job.owner, fingerprint, idempotency_key, since, column="job_id")
            found = connection.execute(query, {**parameters, "now": now}).fetchone()
            return None if found is None else found[0]

        def add(connection: sqlite3.Connection) -> bool:
            by_key = None if job.idempotency_key is None else newest(
                connection, seen.key_since, idempotency_key=job.idempotency_key)
            by_fingerprint = None if seen.fingerprint_since is None else newest(
                connection, seen.fingerprint_since, fingerprint=job.fingerprint)
            if seen.overtaken(by_key, by_fingerprint):
                return False
            connection.execute(UPSERT, row)
            return True

        return await self._db.write(add)

    async def request_cancel(self, owner: str, job_id: str) -> Job:
        """Read, check and mark in one write transaction: the holder's own saves wait for it, or it for them."""
        now = self._clock()

        def request(connection: sqlite3.Connection) -> Job | None:
            found = connection.execute(GET, {"owner": owner, "job_id": job_id, "now": now}).fetchone()
            if found is None:
                return None
            job = job_from_json(json.loads(found[0]))
            if job.status is JobStatus.WORKING:
                job.cancel_requested = True
                connection.execute(UPDATE_DATA, (data_of(job), owner, job_id))
            return job

        job = await self._db.write(request)
        if job is None:
            raise job_not_found(job_id)
        return job

    async def count_caller_elsewhere(self, owner: str, job_id: str, change: int) -> None:
        def count(connection: sqlite3.Connection) -> None:
            stored = connection.execute(GET_ANY, (owner, job_id)).fetchone()
            if stored is not None:
                job = job_from_json(json.loads(stored[0]))
                job.callers_elsewhere += change
                connection.execute(UPDATE_DATA, (data_of(job), owner, job_id))

        await self._db.write(count)

    async def get(self, owner: str, job_id: str) -> Job:
        """One of the owner's live jobs. Raises JobNotFound."""
        found = await self._select(GET, {"owner": owner, "job_id": job_id})
        if not found:
            raise job_not_found(job_id)
        return found[0]

    async def page(self, owner: str, cursor: str | None = None, limit: int = 50) -> JobPage:
        """Up to `limit` of the owner's live jobs, newest first, from just after `cursor`."""
        limit = max(limit, 0)
        parameters: dict[str, Any] = {"owner": owner, "limit": limit + 1}  # one more says whether a page follows
        query = FIRST_PAGE
        if cursor is not None:
            created_at, job_id = decode_cursor(cursor)  # InvalidRequest before touching the file
            parameters |= {"created_at": created_at, "job_id": job_id}
            query = PAGE_AFTER
        found = await self._select(query, parameters)
        jobs = tuple(found[:limit])
        more = len(found) > limit
        return JobPage(jobs, encode_job_cursor(jobs[-1]) if more and jobs else None)

    async def find(
        self, owner: str, *, fingerprint: str | None = None, idempotency_key: str | None = None,
        since: float = 0.0,
    ) -> Job | None:
        """The owner's newest live job created at or after `since` that has the fingerprint and the key given."""
        found = await self._select(*find_query(owner, fingerprint, idempotency_key, since))
        return found[0] if found else None

    async def sweep(self, now: float) -> int:
        """Delete the jobs of every owner whose ttl ran out before `now`; returns how many."""

        def sweep(connection: sqlite3.Connection) -> int:
            return connection.execute(SWEEP, {"now": now}).rowcount

        return await self._db.write(sweep)

    async def _select(self, query: str, parameters: dict[str, Any]) -> list[Job]:
        """The jobs a query's `data` column holds, in its order; only those live at the clock's now."""
        parameters = {**parameters, "now": self._clock()}

        def select(connection: sqlite3.Connection) -> list[str]:
            return [data for (data,) in connection.execute(query, parameters)]

        return [job_from_json(json.loads(data)) for data in await self._db.read(select)]


def row_of(job: Job) -> tuple[Any, ...]:
    """The job as UPSERT writes it: the columns searched by, then the whole job."""
    return (job.owner, job.job_id, job.created_at, job.fingerprint, job.idempotency_key, expires_at(job),
            data_of(job))


def data_of(job: Job) -> str:
    """The job as the `data` column holds it."""
    return json.dumps(job_to_json(job), separators=(",", ":"))


def expires_at(job: Job) -> float | None:
    """When the job's ttl runs out, in clock seconds; None if it never does."""
    return None if job.ttl_ms is None else job.created_at + job.ttl_ms / 1000


def find_query(
    owner: str, fingerprint: str | None, idempotency_key: str | None, since: float, column: str = "data",
) -> tuple[str, dict[str, Any]]:
    """The query for `find`: only the conditions asked for, so SQLite picks the index of the one given (the
    idempotency key's when both are, it is the narrower)."""
    conditions = ["owner = :owner", "created_at >= :since", LIVE]
    if fingerprint is not None:
        conditions.append("fingerprint = :fingerprint")
    if idempotency_key is not None:
        conditions.append("idempotency_key = :idempotency_key")
    query = f"SELECT {column} FROM jobs WHERE {' AND '.join(conditions)} {NEWEST_FIRST} LIMIT 1"
    return query, {"owner": owner, "since": since, "fingerprint": fingerprint, "idempotency_key": idempotency_key}
