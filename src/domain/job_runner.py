"""Runs paid calls as jobs: merged when identical calls are in flight, replayed for an idempotency key or for a
paid result nobody received, kept alive in the store while they run, and cancellable from any request."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from .errors import IdempotencyConflict, ImageServerError, JobNotFound
from .jobs import (
    IDEMPOTENCY_WINDOW_S,
    UNCLAIMED_WINDOW_S,
    Job,
    JobCall,
    JobPage,
    JobStatus,
    Precedents,
    Submission,
    has_ended,
    key_alias,
    new_job_id,
    replay_note,
    this_process,
)
from .outcomes import Outcome
from .ports import JobStore, ProgressReporter

log = logging.getLogger(__name__)

Work = Callable[[ProgressReporter], Awaitable[Outcome]]

UNWANTED = "cancelled: nobody waited for it any more; nothing was saved"
"""How a job ends that its callers all left (not cancelled by anyone's request)."""

MAX_LOOKS = 5
"""How often a submission looks again after another process started the same call first. Each time it finds
that process's job to join, so a second look is rare and a fifth means the store keeps changing under it."""


@dataclass
class _Running:
    job: Job
    task: asyncio.Task[None] | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    listeners: list[ProgressReporter] = field(default_factory=list)
    on_status: list[Callable[[Job], Awaitable[None]]] = field(default_factory=list)
    detached: bool = False
    """Someone was told to come back for the result: a caller that goes away no longer cancels the job."""
    callers: int = 1
    """Calls in this process waiting for the result (the one that started it, and those merged into it)."""
    stopped_by: str | None = None
    """Why the server stopped it, when nobody cancelled it (a replica stopped by its operator)."""
    unwanted: bool = False
    """Being stopped because nobody waits for it any more: a call arriving now starts anew instead of joining
    a job about to end cancelled."""
    recorded: bool = False
    """Whether the store holds how the job ended."""
    recorder: asyncio.Task[None] | None = None
    """Retries recording the end while the store fails."""


class JobRunner:
    """In-process registry of running jobs over a JobStore that every process shares."""

    def __init__(
        self,
        store: JobStore,
        clock: Callable[[], float] = time.time,
        heartbeat_s: float = 5.0,
        instance: str | None = None,
        on_finished: Callable[[Job], None] | None = None,
    ) -> None:
        self._store = store
        self._on_finished = on_finished
        """Told of every job that ends in this process (for metrics); must not raise, must not block."""
        self._clock = clock
        self._heartbeat_s = heartbeat_s
        self._instance = instance or this_process()
        self._running: dict[str, _Running] = {}
        self._submitting: dict[tuple[str, str], asyncio.Lock] = {}

    @property
    def running_count(self) -> int:
        """Jobs running in this process now."""
        return sum(not running.job.status.finished for running in self._running.values())

    async def submit(self, call: JobCall, work: Work) -> Submission:
        """The job for `call`: an existing one when it is the same call, otherwise a new one, started now."""
        # One submission at a time per call in this process: identical calls arriving together then find the
        # first one's job here. Across processes the store decides: a job is stored only if nobody stored one
        # for the same call (or key) since this process looked, or it looks again and joins that one.
        key = (call.owner, call.fingerprint)
        lock = self._submitting.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                doubted: set[str] = set()
                for _ in range(MAX_LOOKS):
                    if (submission := await self._look(call, work, doubted)) is not None:
                        return submission
                raise ImageServerError("Identical calls kept starting in other server processes at the same moment, "
                                       "so this one started none; call again (nothing was paid for it).")
        finally:
            if not lock.locked():  # nobody waits on it: do not keep a lock per call ever made
                self._submitting.pop(key, None)

    async def _look(self, call: JobCall, work: Work, doubted: set[str]) -> Submission | None:
        """One look at what the store holds for the call, and what follows: join or be handed a job, or start
        one. None when the store changed under it: look again."""
        seen = await self._precedents(call)
        if await self._heard_again(seen, doubted):
            return None  # a silent holder spoke again: the store was away, not the holder
        reused = self._reuse(call, seen)
        if reused is None:
            return await self._start(call, work, seen)  # None: another process started the call first
        if not await self._bind_key(call, reused, seen):
            return None  # the key was used elsewhere meanwhile: what it leads to now decides
        return await self._count_in(reused)

    async def _count_in(self, joined: Submission) -> Submission:
        """Count a call that joined a job among its callers: here if it runs here, in the store if it runs in
        another process (so that process's own callers going away do not stop it)."""
        job = joined.job
        if (running := self._running.get(job.job_id)) is not None:
            running.callers += 1
            return joined
        if job.status is not JobStatus.WORKING:
            return joined  # given back a result: nobody to count in
        try:
            await self._store.count_caller_elsewhere(job.owner, job.job_id, +1)
        except ImageServerError as e:  # it still gets the result; only a departure of the holder's callers stops it
            log.warning("could not count a caller of job %s in the store: %s", job.job_id, e)
            return joined
        return dataclasses.replace(joined, joined_elsewhere=True)

    async def _start(self, call: JobCall, work: Work, seen: Precedents) -> Submission | None:
        """A new job started now, or None (nothing started) if another process started the same call first."""
        now = self._clock()
        job = Job(job_id=new_job_id(), owner=call.owner, tool=call.tool, fingerprint=call.fingerprint,
                  created_at=now, ttl_ms=call.ttl_ms, idempotency_key=call.idempotency_key,
                  holder=self._instance, arguments=call.arguments)
        if not await self._store.add_unless_overtaken(job, seen):
            return None
        running = _Running(job)
        self._running[job.job_id] = running
        running.task = asyncio.create_task(self._run(running, work), name=f"job {job.job_id}")
        return Submission(job)

    async def failed_early(self, owner: str, tool: str, error: str, ttl_ms: int | None) -> Job:
        """A job for a call refused before it could start (bad arguments): completed, with the error."""
        now = self._clock()
        job = Job(job_id=new_job_id(), owner=owner, tool=tool, fingerprint="", created_at=now, ttl_ms=ttl_ms,
                  status=JobStatus.COMPLETED, status_message="refused", error=error, is_error=True,
                  holder=self._instance)
        await self._store.add(job)
        return job

    async def wait(self, owner: str, job_id: str, timeout_s: float | None,
                   progress: ProgressReporter | None = None) -> Job:
        """The job once it finished, or as it stands after `timeout_s` (None: wait for ever)."""
        running = self._running.get(job_id)
        if running is not None and running.job.owner == owner:
            return await self._wait_here(running, timeout_s, progress)
        return await self._poll_store(owner, job_id, timeout_s)

    def detach(self, job_id: str) -> None:
        """The caller was told to come back later: the job must survive the caller."""
        if (running := self._running.get(job_id)) is not None:
            running.detached = True

    def watch(self, job_id: str, on_status: Callable[[Job], Awaitable[None]]) -> None:
        """Call `on_status` whenever the job's status changes (for MCP task status notifications)."""
        if (running := self._running.get(job_id)) is not None:
            running.on_status.append(on_status)

    async def abandon(self, submission: Submission) -> None:
        """A caller went away before it was told of a job id. The last one to go stops the job (stop paying for
        it); while another identical call still waits for it, here or in another process, it goes on."""
        job = submission.job
        if submission.joined_elsewhere:
            with contextlib.suppress(ImageServerError):  # then the holder only lets it go on when it need not
                await self._store.count_caller_elsewhere(job.owner, job.job_id, -1)
            return
        running = self._running.get(job.job_id)
        if running is None:
            return
        running.callers -= 1
        if self._wanted_here(running) or running.task is None or await self._wanted_elsewhere(running):
            return  # (wanted elsewhere only: its heartbeat stops it once those callers have gone too)
        running.unwanted = True
        running.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running.task

    async def get(self, owner: str, job_id: str) -> Job:
        running = self._running.get(job_id)
        if running is not None and running.job.owner == owner:
            return dataclasses.replace(running.job)
        return self._judged(await self._store.get(owner, job_id))

    async def page(self, owner: str, cursor: str | None = None, limit: int = 50) -> JobPage:
        page = await self._store.page(owner, cursor, limit)
        jobs = tuple(self._judged(job) for job in page.jobs if job.shares is None)  # a key's alias is no call
        return JobPage(jobs, page.next_cursor)

    async def cancel(self, owner: str, job_id: str) -> Job:
        """Stop a working job: here at once (the API request is aborted), elsewhere at its next heartbeat."""
        job = await self.get(owner, job_id)
        if job.status.finished:
            return job
        running = self._running.get(job_id)
        if running is not None and running.task is not None:
            running.task.cancel()
            await running.done.wait()
            return dataclasses.replace(running.job)
        # Elsewhere: marked in one step of the store (a whole-record save here could write a job that has just
        # finished back as working, losing its result), then given the holder's next heartbeats to act on it.
        job = await self._store.request_cancel(owner, job_id)
        if job.status.finished:
            return job
        return await self._poll_store(owner, job_id, 2.5 * self._heartbeat_s)

    async def mark_delivered(self, job: Job) -> None:
        if job.delivered or not job.status.finished:
            return
        job.delivered = True
        running = self._running.get(job.job_id)
        if running is not None:
            running.job.delivered = True
        with contextlib.suppress(ImageServerError):  # a lost "delivered" flag only allows one harmless replay
            await self._store.save(job)

    async def sweep(self) -> int:
        return await self._store.sweep(self._clock())

    async def finish_running(self) -> None:
        """The process is ending on its own (stdin closed), not by a signal: the jobs still running here are
        those a caller was told would go on, or that callers in other processes wait for. Wait for them, so
        their results are recorded and no one is left to pay again."""
        running = [r for r in self._running.values() if r.task is not None and not r.done.is_set()]
        if not running:
            return
        log.warning("finishing %d job(s) still running before exiting (%s); Ctrl-C or SIGTERM stops them now, "
                    "recorded as cancelled", len(running), ", ".join(r.job.job_id for r in running))
        await asyncio.gather(*(r.done.wait() for r in running))

    async def stop_all(self, failure: str | None = None) -> None:
        """The server is stopping: cancel what still runs here. Each is recorded as cancelled (its user asked:
        Ctrl-C), or, given `failure`, as failed with it (the operator stopped a replica: nobody cancelled it)."""
        stopping = list(self._running.values())
        for running in stopping:
            running.stopped_by = failure
        tasks = [task for running in stopping for task in (running.task, running.recorder) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for running in stopping:
            # A job cancelled before its task first ran never reached its own `finally` (a shutdown right
            # after a call came in): record it here, or stopping would wait for it for ever.
            if not running.done.is_set() and not running.job.status.finished:
                await self._finish_stopped(running)
            running.done.set()

    # -- reuse -----------------------------------------------------------------------------------------------
    async def _heard_again(self, seen: Precedents, doubted: set[str]) -> bool:
        """Before a silent job is judged dead and its call paid again: its holder may be alive and have been
        unable to reach the store (an outage stops every heartbeat). Give it two beats to be heard."""
        for job in (seen.keyed, seen.by_fingerprint):
            if job is not None and job.job_id not in doubted and self._silent(job):
                doubted.add(job.job_id)
                return await self._speaks_within(job, 2 * self._heartbeat_s)
        return False

    async def _speaks_within(self, job: Job, window_s: float) -> bool:
        """Whether the job's holder saves it again (a heartbeat, or its end) within `window_s`."""
        interval = min(0.5, self._heartbeat_s / 4)
        for _ in range(math.ceil(window_s / interval)):
            await asyncio.sleep(interval)
            with contextlib.suppress(ImageServerError):
                now = await self._store.get(job.owner, job.job_id)
                if now.alive_at != job.alive_at or now.status.finished:
                    return True
        return False

    async def _precedents(self, call: JobCall) -> Precedents:
        now = self._clock()
        key_since, fingerprint_since = now - IDEMPOTENCY_WINDOW_S, now - UNCLAIMED_WINDOW_S
        by_key = keyed = None
        if call.idempotency_key is not None:
            by_key = keyed = await self._store.find(call.owner, idempotency_key=call.idempotency_key, since=key_since)
            if by_key is not None and by_key.shares is not None:  # the key's alias: the job it joined
                try:
                    keyed = await self._store.get(call.owner, by_key.shares)
                except JobNotFound:
                    keyed = None
        by_fingerprint = await self._store.find(call.owner, fingerprint=call.fingerprint, since=fingerprint_since)
        return Precedents(key_since, by_key, fingerprint_since, by_fingerprint, keyed)

    async def _bind_key(self, call: JobCall, reused: Submission, seen: Precedents) -> bool:
        """A keyed call that joined (or was handed) a job its key does not lead to yet: bind the key to that job,
        so a retry with the key gets it too. False if another process used the key meanwhile (look again)."""
        job = reused.job
        if call.idempotency_key is None or job.idempotency_key == call.idempotency_key:
            return True
        if seen.keyed is not None and seen.keyed.job_id == job.job_id:
            return True
        alias = key_alias(call, job, self._clock())
        return await self._store.add_unless_overtaken(alias, replace(seen, fingerprint_since=None,
                                                                     by_fingerprint=None))

    def _reuse(self, call: JobCall, seen: Precedents) -> Submission | None:
        if (earlier := seen.keyed) is not None:
            if earlier.fingerprint != call.fingerprint or earlier.tool != call.tool:
                raise IdempotencyConflict(
                    f"The idempotency_key {call.idempotency_key!r} was used for a different call (job "
                    f"{earlier.job_id}, {earlier.tool}). Use a new key for new arguments, or repeat the "
                    "first call's arguments exactly to get its result.")
            # A key makes a retry safe: it hands back a result, or joins the call still making it. A call that
            # ended without one (cancelled, failed, an error) is what the retry is for, so it runs again.
            earlier = self._judged(dataclasses.replace(earlier))
            if not earlier.ended_without_result and not self._dying(earlier):
                return Submission(earlier, replay_note(earlier, "idempotency_key"))
        for running in self._running.values():
            same = running.job.owner == call.owner and running.job.fingerprint == call.fingerprint
            if same and not running.job.status.finished and not running.unwanted:
                return Submission(dataclasses.replace(running.job), "An identical call was already running; "
                                  "this one shares its result (one API request, billed once).")
        if (recent := seen.by_fingerprint) is not None and not self._dying(recent):
            recent = self._judged(dataclasses.replace(recent))
            if recent.status is JobStatus.WORKING:
                return Submission(recent, "An identical call is running in another server process; this one "
                                  "shares its result.")
            if recent.status is JobStatus.COMPLETED and not recent.is_error and not recent.delivered:
                return Submission(recent, replay_note(recent, "unclaimed"))
        return None

    # -- running -----------------------------------------------------------------------------------------------
    async def _run(self, running: _Running, work: Work) -> None:
        heartbeat = asyncio.create_task(self._keep_alive(running))
        try:
            outcome = await work(lambda p, t, m: self._progress(running, p, t, m))
            await self._finish(running, JobStatus.COMPLETED, f"saved {len(outcome.images)} image(s)", outcome=outcome)
        except ImageServerError as e:
            await self._finish(running, JobStatus.COMPLETED, "failed with an error", error=str(e), is_error=True)
        except asyncio.CancelledError:
            await self._finish_stopped(running)
            raise
        except Exception as e:
            log.exception("job %s failed", running.job.job_id)
            await self._finish(running, JobStatus.FAILED, "failed", error=f"Unexpected failure ({type(e).__name__}).")
        finally:
            heartbeat.cancel()
            running.done.set()
            if running.recorded:
                self._running.pop(running.job.job_id, None)
            else:  # kept here, so this process still answers with the result, until the store has it too
                running.recorder = asyncio.create_task(self._record_until_saved(running))

    async def _finish_stopped(self, running: _Running) -> None:
        """Record a job stopped before its image was saved, saying why."""
        if running.stopped_by is not None:
            await self._finish(running, JobStatus.FAILED, "failed: its server process was stopped",
                               error=running.stopped_by)
        else:
            await self._finish(running, JobStatus.CANCELLED,
                               UNWANTED if running.unwanted else "cancelled; nothing was saved")

    async def _finish(self, running: _Running, status: JobStatus, message: str, *, outcome: Outcome | None = None,
                      error: str | None = None, is_error: bool = False) -> None:
        job = running.job
        job.status, job.status_message, job.outcome, job.error, job.is_error = status, message, outcome, error, is_error
        job.updated_at = job.alive_at = self._clock()
        if self._on_finished is not None:
            try:
                self._on_finished(dataclasses.replace(job))
            except Exception:  # an observer's failure is not the job's
                log.exception("job observer failed")
        # Shielded: a cancelled job must still be recorded as cancelled, a finished one as finished.
        await asyncio.shield(self._save_and_announce(running))

    async def _save_and_announce(self, running: _Running) -> None:
        try:
            await self._store.save(dataclasses.replace(running.job))
            running.recorded = True
        except ImageServerError as e:
            log.error("could not record job %s as %s (will retry): %s", running.job.job_id, running.job.status, e)
        for listener in running.on_status:
            with contextlib.suppress(Exception):
                await listener(dataclasses.replace(running.job))

    async def _progress(self, running: _Running, progress: float, total: float | None, message: str) -> None:
        running.job.status_message = message
        for listener in list(running.listeners):
            with contextlib.suppress(Exception):  # one departed caller must not stop the job
                await listener(progress, total, message)

    async def _record_until_saved(self, running: _Running) -> None:
        """The store failed when the job ended (a Redis restart, say): record the end once it answers again, or a
        job that was paid for would read as working for ever here, and as failed elsewhere."""
        job = running.job
        try:
            while not job.expired(self._clock()):
                await asyncio.sleep(self._heartbeat_s)
                with contextlib.suppress(ImageServerError):
                    await self._store.save(dataclasses.replace(job))
                    log.info("job %s recorded as %s once the state store answered again", job.job_id, job.status)
                    return
        finally:
            self._running.pop(job.job_id, None)

    def _dying(self, job: Job) -> bool:
        """Being stopped here because its callers all left: not a job for a new caller to join."""
        running = self._running.get(job.job_id)
        return running is not None and running.unwanted

    @staticmethod
    def _wanted_here(running: _Running) -> bool:
        """Whether a caller in this process waits for the job, or was told to come back for it."""
        return running.callers > 0 or running.detached

    async def _wanted_elsewhere(self, running: _Running) -> bool:
        job = running.job
        try:
            return (await self._store.get(job.owner, job.job_id)).callers_elsewhere > 0
        except ImageServerError:  # the store cannot say: do what the caller that left asks, and stop it
            return False

    async def _keep_alive(self, running: _Running) -> None:
        """Tell the store this process still runs the job; pick up a cancel asked for from another process, and
        stop a job nobody waits for any more (its callers here went while others waited elsewhere, then they
        went too)."""
        pause = self._heartbeat_s
        while True:
            await asyncio.sleep(pause)
            job = running.job
            try:
                stored = await self._store.get(job.owner, job.job_id)
                unwanted = not self._wanted_here(running) and stored.callers_elsewhere <= 0
                if (stored.cancel_requested or unwanted) and running.task is not None:
                    running.unwanted = unwanted and not stored.cancel_requested
                    running.task.cancel()
                    return
                job.alive_at = job.updated_at = self._clock()
                await self._store.save(dataclasses.replace(job))
                pause = self._heartbeat_s
            except ImageServerError:  # the store is away: be heard again soon after it is back
                pause = min(self._heartbeat_s, 1.0)

    async def _wait_here(self, running: _Running, timeout_s: float | None, progress: ProgressReporter | None) -> Job:
        if progress is not None:
            running.listeners.append(progress)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(running.done.wait(), timeout_s)
        finally:
            if progress is not None:
                running.listeners.remove(progress)
        return dataclasses.replace(running.job)

    async def _poll_store(self, owner: str, job_id: str, timeout_s: float | None) -> Job:
        """The job as another process records it, once it finished or `timeout_s` passed. Looked at often at
        first, then once a second: a quick call's result is not held back by a whole second."""
        deadline = None if timeout_s is None else self._clock() + timeout_s
        pause = min(0.05, self._heartbeat_s)
        while True:
            job = self._judged(await self._store.get(owner, job_id))
            if job.status.finished or (deadline is not None and self._clock() >= deadline):
                return job
            await asyncio.sleep(pause)
            pause = min(2 * pause, 1.0, self._heartbeat_s)

    def _silent(self, job: Job) -> bool:
        """Working, held by a process not seen to have ended, and silent for more than four heartbeats."""
        return (job.status is JobStatus.WORKING and job.holder != self._instance and not has_ended(job.holder)
                and self._clock() - job.alive_at > 4 * self._heartbeat_s)

    def _judged(self, job: Job) -> Job:
        """A working job whose process stopped sending heartbeats, or is seen to have ended, is failed: that
        process died (a crash, kill -9). Seen, a retry right after the crash runs at once instead of joining a
        job nobody runs."""
        if job.status is not JobStatus.WORKING or job.holder == self._instance:
            return job
        silent_for = self._clock() - job.alive_at
        if has_ended(job.holder):
            how = "its process has ended"
        elif silent_for > 4 * self._heartbeat_s:
            how = f"it was silent for {silent_for:.0f}s"
        else:
            return job
        job.status = JobStatus.FAILED
        job.error = (f"The server process that ran this job stopped before the image was saved ({how}). Nothing "
                     "was saved; call the tool again.")
        job.status_message = "failed: its server process stopped"
        return job

