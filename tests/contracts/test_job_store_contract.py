"""One contract for every JobStore: memory, SQLite and Redis behave alike."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from gpt_image_2_mcp.domain.errors import InvalidRequest, JobNotFound
from gpt_image_2_mcp.domain.jobs import Job, JobStatus, Precedents
from gpt_image_2_mcp.domain.outcomes import Outcome, OutcomeKind
from gpt_image_2_mcp.domain.values import Route, SavedImage, Usage
from tests.contracts.stores import CONTRACT_NOW

NOW = CONTRACT_NOW


def outcome() -> Outcome:
    image = SavedImage("/images/a.png", "a.png", 1024, 1024, 1234, "image/png", False, (1, 2), "img_a")
    return Outcome(kind=OutcomeKind.GENERATE, owner="alice", prompt="a fox", images=(image,),
                   usage=Usage(10, 0, 4160, 2), cost_usd=0.125, route=Route.IMAGES, applied={"size": "1024x1024"},
                   notes=("note",), request_id="req_1", revised_prompt="a red fox")


def job(number: int, owner: str = "alice", created_at: float | None = None, **changes) -> Job:
    made = Job(job_id=f"job_{number:04d}", owner=owner, tool="generate_image", fingerprint=f"fp{number % 3}",
               created_at=NOW + number if created_at is None else created_at, ttl_ms=3_600_000,
               arguments={"prompt": "a fox", "inline": "none"})
    return dataclasses.replace(made, **changes)


async def test_a_job_comes_back_as_it_was_saved_with_its_outcome(job_store):
    jobs = job_store.jobs()
    await jobs.add(job(1))
    finished = job(1, status=JobStatus.COMPLETED, outcome=outcome(), status_message="saved 1 image(s)",
                   updated_at=NOW + 5, delivered=True, holder="host:1:abc", alive_at=NOW + 5,
                   idempotency_key="key-1")
    await jobs.save(finished)
    assert await job_store.jobs().get("alice", "job_0001") == finished


async def test_another_owners_job_is_not_found(job_store):
    jobs = job_store.jobs()
    await jobs.add(job(1, owner="alice"))
    with pytest.raises(JobNotFound, match="job_0001"):
        await jobs.get("bob", "job_0001")
    assert (await jobs.page("bob")).jobs == ()
    assert await jobs.find("bob", fingerprint="fp1") is None


async def test_pages_run_newest_first_without_gaps_or_repeats(job_store):
    jobs = job_store.jobs()
    for number in range(1, 8):
        await jobs.add(job(number))
    first = await jobs.page("alice", limit=3)
    await jobs.add(job(100))
    second = await jobs.page("alice", first.next_cursor, limit=3)
    third = await jobs.page("alice", second.next_cursor, limit=3)
    ids = [j.job_id for page in (first, second, third) for j in page.jobs]
    assert ids == [f"job_{n:04d}" for n in range(7, 0, -1)] and third.next_cursor is None
    with pytest.raises(InvalidRequest, match="cursor"):
        await jobs.page("alice", "junk")


async def test_find_returns_the_newest_match_since_a_time(job_store):
    jobs = job_store.jobs()
    for number in (1, 4, 7, 2):
        await jobs.add(job(number, idempotency_key=f"k{number % 2}"))
    assert (await jobs.find("alice", fingerprint="fp1")).job_id == "job_0007"
    assert (await jobs.find("alice", fingerprint="fp1", since=NOW + 8)) is None
    assert (await jobs.find("alice", idempotency_key="k0")).job_id == "job_0004"
    assert (await jobs.find("alice", idempotency_key="k1", since=NOW + 2)).job_id == "job_0007"
    assert await jobs.find("alice", idempotency_key="nope") is None


async def test_expired_jobs_are_swept_and_others_stay(job_store):
    jobs = job_store.jobs()
    await jobs.add(job(1, ttl_ms=1_000))
    await jobs.add(job(2, ttl_ms=None))
    await jobs.add(job(3, ttl_ms=60_000))
    assert await jobs.sweep(NOW + 30) == 1
    with pytest.raises(JobNotFound):
        await jobs.get("alice", "job_0001")
    assert {j.job_id for j in (await jobs.page("alice")).jobs} == {"job_0002", "job_0003"}


async def test_a_cancel_request_marks_a_working_job_and_leaves_a_finished_one_as_it_is(job_store):
    jobs = job_store.jobs()
    await jobs.add(job(1))
    await jobs.add(job(2, status=JobStatus.COMPLETED, outcome=outcome(), status_message="saved 1 image(s)"))
    marked = await job_store.jobs().request_cancel("alice", "job_0001")  # from another process
    untouched = await job_store.jobs().request_cancel("alice", "job_0002")
    assert marked.cancel_requested and (await jobs.get("alice", "job_0001")).cancel_requested
    finished = await jobs.get("alice", "job_0002")
    assert (untouched.status, finished.status, finished.cancel_requested) == (JobStatus.COMPLETED,) * 2 + (False,)
    assert finished.outcome == outcome()
    with pytest.raises(JobNotFound):
        await jobs.request_cancel("bob", "job_0001")


async def test_a_cancel_request_racing_the_jobs_end_never_writes_it_back_as_working(job_store):
    # The holder saves "completed" while other processes ask to cancel: whatever the order, the end stays.
    holder = job_store.jobs()
    await holder.add(job(1))
    cancellers = [job_store.jobs() for _ in range(5)]
    done = job(1, status=JobStatus.COMPLETED, outcome=outcome(), status_message="saved 1 image(s)")
    await asyncio.gather(holder.save(done), *(c.request_cancel("alice", "job_0001") for c in cancellers))
    assert (await holder.get("alice", "job_0001")).status is JobStatus.COMPLETED


async def look(jobs, new: Job) -> Precedents:
    """What a process sees before it starts `new` (as JobRunner looks)."""
    key_since, fingerprint_since = NOW - 100, NOW - 10
    by_key = None if new.idempotency_key is None else await jobs.find(
        new.owner, idempotency_key=new.idempotency_key, since=key_since)
    return Precedents(key_since, by_key, fingerprint_since,
                      await jobs.find(new.owner, fingerprint=new.fingerprint, since=fingerprint_since))


async def test_a_new_job_is_added_only_while_nobody_added_one_for_the_same_call_or_key(job_store):
    jobs = job_store.jobs()
    await jobs.add(job(1, created_at=NOW - 50, idempotency_key="order-7"))  # older than the fingerprint window
    first = job(4, idempotency_key="order-7")
    seen = await look(jobs, first)
    assert await job_store.jobs().add_unless_overtaken(first, seen)
    # Seen before `first` was added: overtaken, by its fingerprint, and by its key under another fingerprint.
    for late in (job(7), job(10, idempotency_key="order-7", fingerprint="other")):
        assert not await job_store.jobs().add_unless_overtaken(late, seen)
        with pytest.raises(JobNotFound):
            await jobs.get("alice", late.job_id)
    again = job(13, idempotency_key="order-7")
    assert await jobs.add_unless_overtaken(again, await look(jobs, again))  # looked after: the runner's choice
    assert (await jobs.find("alice", idempotency_key="order-7")).job_id == "job_0013"


async def test_of_many_processes_starting_the_same_call_at_once_exactly_one_adds_its_job(job_store):
    processes = [job_store.jobs() for _ in range(12)]
    calls = [job(3 * i + 1, idempotency_key="order-8", created_at=NOW) for i in range(12)]  # one fingerprint
    looks = [await look(jobs, call) for jobs, call in zip(processes, calls, strict=True)]  # all look first
    added = await asyncio.gather(*(jobs.add_unless_overtaken(call, seen)
                                   for jobs, call, seen in zip(processes, calls, looks, strict=True)))
    assert sum(added) == 1
    winner = calls[added.index(True)]
    assert (await processes[0].find("alice", fingerprint="fp1")).job_id == winner.job_id
    assert [j.job_id for j in (await processes[0].page("alice")).jobs] == [winner.job_id]


async def test_another_owners_job_does_not_overtake(job_store):
    jobs = job_store.jobs()
    mine = job(1, idempotency_key="k")
    seen = await look(jobs, mine)
    await jobs.add(job(4, owner="bob", idempotency_key="k"))
    assert await jobs.add_unless_overtaken(mine, seen)


async def test_a_holders_save_keeps_what_other_processes_asked_of_the_job(job_store):
    holder = job_store.jobs()
    await holder.add(job(1))
    its_copy = await holder.get("alice", "job_0001")  # read for a heartbeat, before the others ask
    other = job_store.jobs()
    for change in (+1, +1, -1):
        await other.count_caller_elsewhere("alice", "job_0001", change)
    await other.request_cancel("alice", "job_0001")
    its_copy.alive_at = NOW + 9
    await holder.save(its_copy)  # the heartbeat's whole-record save
    stored = await job_store.jobs().get("alice", "job_0001")
    assert (stored.cancel_requested, stored.callers_elsewhere, stored.alive_at) == (True, 1, NOW + 9)
    assert (await job_store.jobs().find("alice", fingerprint="fp1")).callers_elsewhere == 1
    await other.count_caller_elsewhere("alice", "job_0404", +1)  # gone or never there: nothing is made
    with pytest.raises(JobNotFound):
        await holder.get("alice", "job_0404")


async def test_an_add_that_binds_only_a_key_looks_only_at_the_key(job_store):
    # A key's alias has no fingerprint of its own to compete on: only another job with its key overtakes it.
    jobs = job_store.jobs()
    await jobs.add(job(1, created_at=NOW - 1))  # the shared job, fingerprint fp1, no key
    seen = Precedents(NOW - 100, None, None, None)
    alias = job(4, fingerprint="", idempotency_key="order-9", shares="job_0001")
    await jobs.add(job(7, created_at=NOW - 1))  # a newer job with fp1: no matter to the alias
    assert await job_store.jobs().add_unless_overtaken(alias, seen)
    found = await job_store.jobs().find("alice", idempotency_key="order-9")
    assert (found.job_id, found.shares) == ("job_0004", "job_0001")
    assert not await job_store.jobs().add_unless_overtaken(job(10, fingerprint="", idempotency_key="order-9"), seen)
