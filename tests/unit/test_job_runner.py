"""The job runner on its own: owners kept apart, merged calls, idempotency keys, dead processes, cancelling."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from gpt_image_2_mcp.adapters.in_memory_job_store import InMemoryJobStore
from gpt_image_2_mcp.domain.errors import (
    BackendUnavailable,
    IdempotencyConflict,
    InvalidRequest,
    JobNotFound,
    StateStoreError,
)
from gpt_image_2_mcp.domain.job_runner import JobCall, JobRunner
from gpt_image_2_mcp.domain.jobs import JobStatus, this_process
from gpt_image_2_mcp.domain.outcomes import Outcome, OutcomeKind
from gpt_image_2_mcp.domain.values import Route


def call(owner: str = "alice", fingerprint: str = "fp", key: str | None = None) -> JobCall:
    return JobCall(owner=owner, tool="generate_image", fingerprint=fingerprint, arguments={"prompt": "x"},
                   idempotency_key=key)


def outcome(owner: str = "alice") -> Outcome:
    return Outcome(kind=OutcomeKind.GENERATE, owner=owner, prompt="x", images=(), usage=None, cost_usd=0.01,
                   route=Route.FAKE, applied={})


class Work:
    """A paid call that finishes when the test says so, counting how often it was really made."""

    def __init__(self) -> None:
        self.made = 0
        self.release = asyncio.Event()

    async def __call__(self, progress) -> Outcome:
        self.made += 1
        await progress(1, 2, "drawing")
        await self.release.wait()
        return outcome()


async def test_another_owner_can_neither_see_nor_wait_for_nor_cancel_a_job():
    runner, work = JobRunner(InMemoryJobStore()), Work()
    job = (await runner.submit(call(owner="alice"), work)).job
    for attempt in (runner.get("bob", job.job_id), runner.cancel("bob", job.job_id),
                    runner.wait("bob", job.job_id, 0)):
        with pytest.raises(JobNotFound):
            await attempt
    assert (await runner.page("bob")).jobs == ()
    work.release.set()
    assert (await runner.wait("alice", job.job_id, 5)).status is JobStatus.COMPLETED


async def test_identical_calls_share_one_job_and_other_owners_do_not():
    runner, work = JobRunner(InMemoryJobStore()), Work()
    first, second = await asyncio.gather(runner.submit(call(), work), runner.submit(call(), work))
    bobs = await runner.submit(call(owner="bob"), work)
    work.release.set()
    assert first.job.job_id == second.job.job_id and second.note
    assert bobs.job.job_id != first.job.job_id
    await runner.wait("alice", first.job.job_id, 5)
    await runner.wait("bob", bobs.job.job_id, 5)
    assert work.made == 2


async def test_an_idempotency_key_replays_and_refuses_other_arguments():
    runner, work = JobRunner(InMemoryJobStore()), Work()
    work.release.set()
    first = await runner.submit(call(key="k1"), work)
    done = await runner.wait("alice", first.job.job_id, 5)
    await runner.mark_delivered(done)
    replay = await runner.submit(call(key="k1"), work)
    assert replay.job.job_id == first.job.job_id and "idempotency_key" in replay.note
    with pytest.raises(IdempotencyConflict, match="different call"):
        await runner.submit(call(fingerprint="other", key="k1"), work)
    assert work.made == 1


class FailsFirst(Work):
    """A paid call whose first attempt ends in a tool error (an API 503, say) and whose retry succeeds."""

    async def __call__(self, progress) -> Outcome:
        self.made += 1
        if self.made == 1:
            raise BackendUnavailable("the API is busy; try again in a minute")
        return outcome()


async def test_a_retry_with_the_key_of_a_call_that_failed_runs_again_and_is_then_replayed():
    runner, work = JobRunner(InMemoryJobStore()), FailsFirst()
    first = await runner.submit(call(key="k1"), work)
    failed = await runner.wait("alice", first.job.job_id, 5)
    assert failed.is_error and "try again" in failed.error
    retry = await runner.submit(call(key="k1"), work)
    done = await runner.wait("alice", retry.job.job_id, 5)
    assert retry.job.job_id != first.job.job_id and retry.note is None
    assert done.status is JobStatus.COMPLETED and not done.is_error
    replay = await runner.submit(call(key="k1"), work)
    assert replay.job.job_id == retry.job.job_id and replay.note
    assert work.made == 2


async def test_a_retry_with_the_key_of_a_cancelled_call_runs_again():
    runner, work = JobRunner(InMemoryJobStore()), Work()
    first = await runner.submit(call(key="k1"), work)
    await asyncio.sleep(0)
    assert (await runner.cancel("alice", first.job.job_id)).status is JobStatus.CANCELLED
    retry = await runner.submit(call(key="k1"), work)
    work.release.set()
    assert retry.job.job_id != first.job.job_id
    assert (await runner.wait("alice", retry.job.job_id, 5)).status is JobStatus.COMPLETED
    assert work.made == 2


async def test_a_retry_with_the_key_of_a_call_whose_process_died_runs_again_but_not_while_it_lives():
    clock = [1_000.0]
    store = InMemoryJobStore(clock=lambda: clock[0])
    # The "dead" process never beats again (its heartbeat is far off); the living one judges by its own 1 s beat.
    dead, work = JobRunner(store, clock=lambda: clock[0], heartbeat_s=1000.0, instance="dead"), Work()
    first = await dead.submit(call(key="k1"), work)
    await asyncio.sleep(0)
    alive = JobRunner(store, clock=lambda: clock[0], heartbeat_s=1.0, instance="alive")
    assert (await alive.submit(call(key="k1"), work)).job.job_id == first.job.job_id  # still working: joined
    clock[0] += 10  # four heartbeats missed: that process died
    retry = await alive.submit(call(key="k1"), work)
    assert retry.job.job_id != first.job.job_id and retry.note is None
    work.release.set()
    assert (await alive.wait("alice", retry.job.job_id, 5)).status is JobStatus.COMPLETED
    await dead.stop_all()


async def test_a_holder_silent_only_because_the_store_was_away_is_joined_not_paid_again():
    # The store was down for longer than four beats: every heartbeat failed, so the job looks dead to a retry
    # that comes right after. Its holder, alive, is heard within two beats, and the retry joins it.
    clock = [1_000.0]
    store = StoreThatGoesDown(clock=lambda: clock[0])
    holder, work = JobRunner(store, clock=lambda: clock[0], heartbeat_s=0.05, instance="holder"), Work()
    first = await holder.submit(call(key="k2"), work)
    store.down = True
    clock[0] += 10  # the outage, longer than four beats
    await asyncio.sleep(0.1)
    store.down = False
    retry = await JobRunner(store, clock=lambda: clock[0], heartbeat_s=0.05, instance="retry").submit(
        call(key="k2"), work)
    assert retry.job.job_id == first.job.job_id and retry.joined_elsewhere
    work.release.set()
    assert (await holder.wait("alice", first.job.job_id, 5)).status is JobStatus.COMPLETED and work.made == 1


async def test_a_job_goes_on_while_a_merged_caller_waits_and_stops_when_the_last_caller_goes():
    runner, work = JobRunner(InMemoryJobStore()), Work()
    first = await runner.submit(call(), work)
    merged = await runner.submit(call(), work)
    await asyncio.sleep(0)
    await runner.abandon(first)  # the caller that started it went away; the merged one still waits
    assert (await runner.get("alice", first.job.job_id)).status is JobStatus.WORKING
    await runner.abandon(merged)
    assert (await runner.get("alice", first.job.job_id)).status is JobStatus.CANCELLED
    assert work.made == 1


async def test_a_merged_caller_that_goes_away_leaves_the_job_to_the_caller_that_started_it():
    runner, work = JobRunner(InMemoryJobStore()), Work()
    first = await runner.submit(call(), work)
    merged = await runner.submit(call(), work)
    await runner.abandon(merged)
    work.release.set()
    assert (await runner.wait("alice", first.job.job_id, 5)).status is JobStatus.COMPLETED


async def until_status(runner: JobRunner, job_id: str, status: JobStatus) -> None:
    for _ in range(500):
        if (await runner.get("alice", job_id)).status is status:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"job {job_id} never became {status}")


async def test_a_job_goes_on_while_a_caller_in_another_process_waits_and_stops_when_it_goes_too():
    store = InMemoryJobStore()
    here, work = JobRunner(store, heartbeat_s=0.01, instance="here"), Work()
    there = JobRunner(store, heartbeat_s=0.01, instance="there")
    first = await here.submit(call(), work)
    joined = await there.submit(call(), work)  # the same call reaching another replica
    assert joined.job.job_id == first.job.job_id and joined.joined_elsewhere
    await here.abandon(first)  # the caller that started it went away; the one on the other replica still waits
    await asyncio.sleep(0.05)  # several heartbeats
    assert (await there.get("alice", first.job.job_id)).status is JobStatus.WORKING
    await there.abandon(joined)  # now nobody waits for it anywhere: its holder stops paying for it
    await until_status(here, first.job.job_id, JobStatus.CANCELLED)
    assert work.made == 1


async def test_a_caller_in_another_process_gets_the_result_after_the_starting_caller_went_away():
    store = InMemoryJobStore()
    here, work = JobRunner(store, heartbeat_s=0.01, instance="here"), Work()
    there = JobRunner(store, heartbeat_s=0.01, instance="there")
    first = await here.submit(call(), work)
    joined = await there.submit(call(), work)
    await here.abandon(first)
    work.release.set()
    finished = await there.wait("alice", joined.job.job_id, 5)
    assert finished.status is JobStatus.COMPLETED and finished.outcome is not None and work.made == 1


async def test_a_keyed_call_that_joined_another_binds_its_key_so_a_retry_gets_the_same_result():
    # The key's promise: a retry with it returns what the first call got, though that call joined another's job.
    store = InMemoryJobStore()
    here, work = JobRunner(store, instance="here"), Work()
    there = JobRunner(store, instance="there")
    plain = await here.submit(call(), work)  # no key
    keyed = await there.submit(call(key="order-42"), work)  # the same call with a key, on another replica
    assert keyed.job.job_id == plain.job.job_id
    work.release.set()
    await here.wait("alice", plain.job.job_id, 5)
    retried = await there.submit(call(key="order-42"), work)  # the client lost the answer and retries
    assert retried.job.job_id == plain.job.job_id and "idempotency_key" in (retried.note or "")
    with pytest.raises(IdempotencyConflict, match="order-42"):  # the key with other arguments
        await there.submit(call(fingerprint="other", key="order-42"), work)
    assert work.made == 1 and [j.job_id for j in (await here.page("alice")).jobs] == [plain.job.job_id]


async def test_a_call_arriving_while_the_last_caller_leaves_starts_anew_rather_than_join_the_dying_job():
    runner, work = JobRunner(InMemoryJobStore()), Work()
    first = await runner.submit(call(), work)
    await asyncio.sleep(0)
    leaving = asyncio.create_task(runner.abandon(first))
    await asyncio.sleep(0)  # its only caller left: the job is being cancelled
    second = await runner.submit(call(), work)
    await leaving
    assert second.job.job_id != first.job.job_id and second.note is None
    assert (await runner.get("alice", first.job.job_id)).status_message.startswith("cancelled: nobody waited")
    work.release.set()
    assert (await runner.wait("alice", second.job.job_id, 5)).status is JobStatus.COMPLETED


@pytest.mark.parametrize("failure, status", [
    (None, JobStatus.CANCELLED), ("The replica was stopped.", JobStatus.FAILED),
])
async def test_stopping_the_server_records_its_jobs_as_its_user_or_its_operator_stopped_them(failure, status):
    # Ctrl-C is the user's cancel; a replica stopped by its operator failed its callers, who cancelled nothing.
    store = InMemoryJobStore()
    runner, work = JobRunner(store), Work()
    job = (await runner.submit(call(), work)).job
    await asyncio.sleep(0)
    await runner.stop_all(failure)
    stored = await store.get("alice", job.job_id)
    assert stored.status is status and (failure is None or stored.error == failure)


class StoreThatGoesDown(InMemoryJobStore):
    """The job store while its server restarts: every write fails until it is back."""

    down = False

    async def save(self, job):
        if self.down:
            raise StateStoreError("the state store is not answering")
        await super().save(job)


async def test_a_job_that_ends_while_the_store_is_down_is_recorded_once_it_is_back():
    store = StoreThatGoesDown()
    runner, work = JobRunner(store, heartbeat_s=0.01), Work()
    job = (await runner.submit(call(), work)).job
    store.down = True
    work.release.set()
    finished = await runner.wait("alice", job.job_id, 5)
    assert finished.status is JobStatus.COMPLETED and finished.outcome is not None  # the caller has its result
    assert (await runner.get("alice", job.job_id)).status is JobStatus.COMPLETED  # and later askers too
    assert (await store.get("alice", job.job_id)).status is JobStatus.WORKING
    assert runner.running_count == 0
    store.down = False
    for _ in range(500):
        if (await store.get("alice", job.job_id)).status is JobStatus.COMPLETED:
            break
        await asyncio.sleep(0.01)
    assert (await store.get("alice", job.job_id)).status is JobStatus.COMPLETED
    assert (await runner.get("alice", job.job_id)).status is JobStatus.COMPLETED


async def test_progress_reaches_the_waiting_caller_and_the_job_status():
    runner, work = JobRunner(InMemoryJobStore()), Work()
    heard = []

    async def listener(progress, total, message):
        heard.append(message)
        work.release.set()

    job = (await runner.submit(call(), work)).job
    finished = await runner.wait("alice", job.job_id, 5, listener)
    assert heard == ["drawing"] and finished.status is JobStatus.COMPLETED
    assert finished.status_message == "saved 0 image(s)"


async def test_cancelling_a_running_job_stops_its_work_and_records_it():
    store = InMemoryJobStore()
    runner, work = JobRunner(store), Work()
    job = (await runner.submit(call(), work)).job
    await asyncio.sleep(0)
    cancelled = await runner.cancel("alice", job.job_id)
    assert cancelled.status is JobStatus.CANCELLED
    assert (await store.get("alice", job.job_id)).status is JobStatus.CANCELLED


async def test_a_working_job_whose_process_went_silent_is_judged_failed():
    clock = [1_000.0]
    store = InMemoryJobStore(clock=lambda: clock[0])
    runner, work = JobRunner(store, clock=lambda: clock[0], heartbeat_s=1.0, instance="dead"), Work()
    job = (await runner.submit(call(), work)).job
    await asyncio.sleep(0)
    observer = JobRunner(store, clock=lambda: clock[0], heartbeat_s=1.0, instance="alive")
    assert (await observer.get("alice", job.job_id)).status is JobStatus.WORKING
    clock[0] += 10  # four heartbeats missed
    judged = await observer.get("alice", job.job_id)
    assert judged.status is JobStatus.FAILED and "stopped before the image was saved" in judged.error
    await runner.stop_all()


def ended_process_holder() -> str:
    """A holder as this_process() writes it, for a process of this machine that has ended."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return f"{this_process().rsplit(':', 2)[0]}:{child.pid}:0badc0"


async def test_a_working_job_whose_process_has_ended_here_is_failed_at_once_and_its_twin_runs_again():
    store = InMemoryJobStore()
    dead = JobRunner(store, instance=ended_process_holder())  # killed -9 right after it started the job
    first = (await dead.submit(call(), Work())).job
    await asyncio.sleep(0)
    runner, work = JobRunner(store), Work()  # the restarted server, at once: no heartbeat has been missed yet
    judged = await runner.get("alice", first.job_id)
    assert judged.status is JobStatus.FAILED and "its process has ended" in judged.error
    retry = await runner.submit(call(), work)
    assert retry.job.job_id != first.job_id and retry.note is None  # run anew, not joined to the dead job
    work.release.set()
    await runner.stop_all()
    await dead.stop_all()


async def test_a_job_held_elsewhere_is_judged_by_its_silence_alone():
    store = InMemoryJobStore()
    elsewhere = JobRunner(store, instance="another-host~1:1:abcdef")
    job = (await elsewhere.submit(call(), Work())).job
    await asyncio.sleep(0)
    assert (await JobRunner(store).get("alice", job.job_id)).status is JobStatus.WORKING
    await elsewhere.stop_all()


async def test_a_job_refused_before_it_started_completes_with_its_error():
    runner = JobRunner(InMemoryJobStore())
    job = await runner.failed_early("alice", "generate_image", "bad size", 60_000)
    stored = await runner.get("alice", job.job_id)
    assert (stored.status, stored.is_error, stored.error) == (JobStatus.COMPLETED, True, "bad size")


async def test_a_bad_cursor_is_refused():
    with pytest.raises(InvalidRequest, match="cursor"):
        await JobRunner(InMemoryJobStore()).page("alice", "junk")


async def test_an_observer_hears_of_each_finished_job_once_and_cannot_break_it():
    heard = []

    def observe(job):
        heard.append((job.job_id, job.status))
        raise RuntimeError("a broken observer")

    runner, work = JobRunner(InMemoryJobStore(), on_finished=observe), Work()
    job = (await runner.submit(call(), work)).job
    assert runner.running_count == 1
    await runner.submit(call(), work)  # merged into the same job
    work.release.set()
    done = await runner.wait("alice", job.job_id, 5)
    assert done.status is JobStatus.COMPLETED and not done.is_error
    assert heard == [(job.job_id, JobStatus.COMPLETED)] and runner.running_count == 0


async def test_stopping_right_after_a_submit_ends_and_records_the_job_cancelled():
    # The job's task had not run yet when stop_all cancelled it, so its own `finally` never ran: stopping
    # waited for it for ever (a server shut down right after a call came in never exited).
    store = InMemoryJobStore()
    runner = JobRunner(store)
    job = (await runner.submit(call(), Work())).job
    async with asyncio.timeout(10):  # in this task, so the job's task gets no turn before stop_all
        await runner.stop_all()
    assert (await store.get("alice", job.job_id)).status is JobStatus.CANCELLED
