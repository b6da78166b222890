"""A job: one paid tool call that may outlive the request that started it (MCP tasks, or a plain call that
returned before its image was ready). Jobs live in the state store, so any process can report on them."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import secrets
import socket
import time
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from .outcomes import Outcome


class JobStatus(StrEnum):
    """The MCP task statuses (2025-11-25)."""

    WORKING = "working"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self is not JobStatus.WORKING


IDEMPOTENCY_WINDOW_S = 24 * 3600
UNCLAIMED_WINDOW_S = 10 * 60


def new_job_id() -> str:
    return f"job_{secrets.token_hex(8)}"


def fingerprint(tool: str, arguments: dict[str, Any], input_digests: tuple[str, ...] = ()) -> str:
    """What makes two calls the same call: the tool, its canonical arguments and the bytes of its inputs."""
    canonical = json.dumps({"tool": tool, "arguments": arguments, "inputs": input_digests}, sort_keys=True,
                           separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(slots=True)
class Job:
    """One paid call and what became of it. `outcome` is set once the images are saved (completed); `error`
    holds a tool error's text (completed, is_error) or a failure's (failed)."""

    job_id: str
    owner: str
    tool: str
    fingerprint: str
    created_at: float
    ttl_ms: int | None
    status: JobStatus = JobStatus.WORKING
    updated_at: float = 0.0
    status_message: str = "request accepted"
    outcome: Outcome | None = None
    error: str | None = None
    is_error: bool = False
    idempotency_key: str | None = None
    holder: str = ""
    """Which server process runs the job (host:pid:nonce)."""
    alive_at: float = 0.0
    """When the running process last said it is alive: a stale working job's process died."""
    delivered: bool = False
    """Whether a caller has been given the result (an undelivered paid result can be handed to a retry)."""
    cancel_requested: bool = False
    """Another process asked the holder to cancel the job (it acts at its next heartbeat)."""
    callers_elsewhere: int = 0
    """Callers in other processes waiting for the result (they joined it through the store): while there are
    some, the holder goes on when its own callers go away."""
    arguments: dict[str, Any] = field(default_factory=dict)
    """The call's arguments as given (how the result is shown: inline mode), never secrets."""
    shares: str | None = None
    """Set on a key's alias: a keyed call that joined (or was handed) another call's job, `shares` being that
    job's id. It makes the key find that job, as a key finds the job it started."""

    def __post_init__(self) -> None:
        self.updated_at = self.updated_at or self.created_at
        self.alive_at = self.alive_at or self.created_at

    def expired(self, now: float) -> bool:
        return self.ttl_ms is not None and now > self.created_at + self.ttl_ms / 1000

    def with_requests(self, cancel_requested: bool, callers_elsewhere: int) -> Job:
        """This job as its holder saves it, with what other processes asked of it as the store holds it: those
        requests are the store's, so a holder's save (a heartbeat, the end) never writes over them."""
        if (cancel_requested, callers_elsewhere) == (self.cancel_requested, self.callers_elsewhere):
            return self
        return replace(self, cancel_requested=cancel_requested, callers_elsewhere=callers_elsewhere)

    @property
    def ended_without_result(self) -> bool:
        """Cancelled, failed or finished with an error: nothing for a retry to be given back."""
        return self.status is not JobStatus.WORKING and (self.status is not JobStatus.COMPLETED or self.is_error)


@dataclass(frozen=True, slots=True)
class JobPage:
    jobs: tuple[Job, ...]
    next_cursor: str | None = None


def this_process() -> str:
    """Who runs a job: where (host, and PID namespace where there is one), pid and a nonce (a pid can be reused
    after a restart)."""
    return f"{_here()}:{os.getpid()}:{secrets.token_hex(3)}"


def has_ended(holder: str) -> bool:
    """Whether the process that holds a job has certainly ended: it ran here (same host and PID namespace, so
    its pid means the same process) and no process has that pid now. Anywhere else only its silence can tell."""
    parts = holder.rsplit(":", 2)  # where:pid:nonce
    if os.name != "posix" or len(parts) != 3 or parts[0] != _here() or not parts[1].isdigit():
        return False  # (on Windows, os.kill with 0 would send a Ctrl-C, not look the pid up)
    try:
        os.kill(int(parts[1]), 0)  # signal 0: nothing is sent, the pid is only looked up
    except ProcessLookupError:
        return True
    except OSError:  # it exists, under another user
        return False
    return False


@functools.cache
def _here() -> str:
    # Containers on one host may share its name (host networking) but not their pids: the namespace tells.
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:  # no /proc: not Linux, where a host name is one machine and one pid space
        return socket.gethostname()
    return f"{socket.gethostname()}~{namespace}"


@dataclass(frozen=True, slots=True)
class JobCall:
    """What is asked: by whom, which tool, which call (its fingerprint) and how long to keep the answer."""

    owner: str
    tool: str
    fingerprint: str
    arguments: dict[str, object]
    ttl_ms: int | None = IDEMPOTENCY_WINDOW_S * 1000
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class Precedents:
    """What a process saw before it started a job: the owner's newest live job with the call's idempotency key
    (created since `key_since`) and with its fingerprint (since `fingerprint_since`); None where there was none.
    The new job is stored only while they are still the newest (JobStore.add_unless_overtaken): otherwise
    another process started the same call meanwhile, and this one must look again instead of paying twice."""

    key_since: float
    by_key: Job | None
    fingerprint_since: float | None
    """None: the fingerprint is not looked at (a key's alias, which only binds the key)."""
    by_fingerprint: Job | None
    keyed: Job | None = None
    """The job the key leads to: `by_key` itself, or the job a key alias shares (None if that one is gone)."""

    def overtaken(self, newest_by_key: str | None, newest_by_fingerprint: str | None) -> bool:
        """Whether the store's newest jobs (their ids, as they stand now) differ from those seen."""
        return (newest_by_key, newest_by_fingerprint) != (id_or_none(self.by_key), id_or_none(self.by_fingerprint))


def key_alias(call: JobCall, shared: Job, now: float) -> Job:
    """The record that binds `call`'s idempotency key to the job it shares: never run, never listed. Its
    fingerprint is empty, so identical calls never find it instead of the job itself."""
    return Job(job_id=new_job_id(), owner=call.owner, tool=call.tool, fingerprint="", created_at=now,
               ttl_ms=IDEMPOTENCY_WINDOW_S * 1000, status=JobStatus.COMPLETED,
               status_message=f"the idempotency key's link to job {shared.job_id}",
               idempotency_key=call.idempotency_key, shares=shared.job_id)


def id_or_none(job: Job | None) -> str | None:
    """A job's id, None for no job."""
    return None if job is None else job.job_id


@dataclass(frozen=True, slots=True)
class Submission:
    """The job a call got: a new one, a running one it joined, or a finished one it was given back."""

    job: Job
    note: str | None = None
    """Set when the call did not start a job of its own: what it joined or was given back, and why."""
    joined_elsewhere: bool = False
    """It joined a job another process runs, and is counted in the store among that job's callers."""


def replay_note(job: Job, why: str) -> str:
    made = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(job.created_at))
    if why == "idempotency_key":
        return (f"Returned the stored result of the earlier call with this idempotency_key (job {job.job_id}, "
                f"{made}); no new API request was made.")
    return (f"An identical call at {made} was paid for but its caller went away before the result arrived; "
            f"here it is (job {job.job_id}), with no new API request.")

