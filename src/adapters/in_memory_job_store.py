"""InMemoryJobStore: jobs in a dict per owner, for throwaway runs (`memory://`) and tests."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from gpt_image_2_mcp.domain.errors import JobNotFound
from gpt_image_2_mcp.domain.jobs import Job, JobPage, JobStatus, Precedents, id_or_none
from gpt_image_2_mcp.domain.ports import JobStore

from .state_codec import decode_cursor, encode_job_cursor


def job_not_found(job_id: str) -> JobNotFound:
    return JobNotFound(f"No job or task {job_id!r} (unknown, expired or not yours). Start the call again.")


def _newest_first(job: Job) -> tuple[float, str]:
    return (-job.created_at, job.job_id)


class InMemoryJobStore(JobStore):
    """Gone with the process. Jobs are copied in and out, as a real store would (no shared mutable state)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._owners: dict[str, dict[str, Job]] = {}

    async def add(self, job: Job) -> None:
        self._owners.setdefault(job.owner, {})[job.job_id] = dataclasses.replace(job)

    async def save(self, job: Job) -> None:
        stored = self._owners.get(job.owner, {}).get(job.job_id)
        await self.add(job if stored is None else job.with_requests(stored.cancel_requested, stored.callers_elsewhere))

    async def add_unless_overtaken(self, job: Job, seen: Precedents) -> bool:
        # No await between these reads and the write: atomic here.
        by_key = None if job.idempotency_key is None else self._newest(job.owner, seen.key_since,
                                                                         idempotency_key=job.idempotency_key)
        by_fingerprint = None if seen.fingerprint_since is None else self._newest(
            job.owner, seen.fingerprint_since, fingerprint=job.fingerprint)
        if seen.overtaken(id_or_none(by_key), id_or_none(by_fingerprint)):
            return False
        self._owners.setdefault(job.owner, {})[job.job_id] = dataclasses.replace(job)
        return True

    async def request_cancel(self, owner: str, job_id: str) -> Job:
        job = await self.get(owner, job_id)  # no await between this read and the write below: atomic here
        if job.status is JobStatus.WORKING:
            job.cancel_requested = True
            await self.add(job)
        return job

    async def count_caller_elsewhere(self, owner: str, job_id: str, change: int) -> None:
        if (job := self._live(owner).get(job_id)) is not None:
            job.callers_elsewhere += change

    async def get(self, owner: str, job_id: str) -> Job:
        job = self._live(owner).get(job_id)
        if job is None:
            raise job_not_found(job_id)
        return dataclasses.replace(job)

    async def page(self, owner: str, cursor: str | None = None, limit: int = 50) -> JobPage:
        ordered = sorted(self._live(owner).values(), key=_newest_first)
        if cursor is not None:
            created, job_id = decode_cursor(cursor)
            ordered = [j for j in ordered if _newest_first(j) > (-created, job_id)]
        jobs = tuple(dataclasses.replace(j) for j in ordered[:limit])
        more = len(ordered) > limit
        return JobPage(jobs, encode_job_cursor(jobs[-1]) if more and jobs else None)

    async def find(
        self, owner: str, *, fingerprint: str | None = None, idempotency_key: str | None = None,
        since: float = 0.0,
    ) -> Job | None:
        newest = self._newest(owner, since, fingerprint=fingerprint, idempotency_key=idempotency_key)
        return None if newest is None else dataclasses.replace(newest)

    def _newest(self, owner: str, since: float, *, fingerprint: str | None = None,
                idempotency_key: str | None = None) -> Job | None:
        matches = [
            job for job in self._live(owner).values()
            if job.created_at >= since
            and (fingerprint is None or job.fingerprint == fingerprint)
            and (idempotency_key is None or job.idempotency_key == idempotency_key)
        ]
        return min(matches, key=_newest_first, default=None)

    def _live(self, owner: str) -> dict[str, Job]:
        """The owner's jobs whose ttl has not run out (expired ones read as gone even before a sweep)."""
        now = self._clock()
        return {job_id: job for job_id, job in self._owners.get(owner, {}).items() if not job.expired(now)}

    async def sweep(self, now: float) -> int:
        expired = [(owner, job_id) for owner, jobs in self._owners.items()
                   for job_id, job in jobs.items() if job.expired(now)]
        for owner, job_id in expired:
            del self._owners[owner][job_id]
        return len(expired)
