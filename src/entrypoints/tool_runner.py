"""What every paid tool does around its use case: roots, a job (merged, replayed or new), progress while it
waits, errors in the server's voice, and the result — or a job id to come back to."""

from __future__ import annotations

import contextvars
import logging
import warnings
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp.types import CallToolResult, ImageContent, ResourceLink, TextContent
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel, Field

from gpt_image_2_mcp.adapters.redaction import scrub, scrub_all
from gpt_image_2_mcp.domain.errors import ImageServerError, StateStoreError
from gpt_image_2_mcp.domain.job_runner import JobCall, Submission
from gpt_image_2_mcp.domain.jobs import IDEMPOTENCY_WINDOW_S, Job, JobStatus, fingerprint
from gpt_image_2_mcp.domain.outcomes import Outcome, Placement
from gpt_image_2_mcp.domain.ports import ProgressReporter
from gpt_image_2_mcp.domain.sessions import LOCAL_OWNER
from gpt_image_2_mcp.domain.spend import Confirmation, CostConfirmer

from .download_links import DownloadLinks
from .image_resources import announce_new_images
from .owners import owner_folder, owner_of
from .presentation import Presenter
from .progress import with_progress
from .protocol_errors import for_caller
from .settings import Settings
from .tool_arguments import call_arguments, identity, placement, requested, safety_identifier_of
from .tool_outputs import ImageToolOutput
from .use_cases import UseCases

log = logging.getLogger(__name__)

UseCaseCall = Callable[[Placement, ProgressReporter], Awaitable[Outcome]]
JOB_META = "io.github.gpt-image-2-mcp/job"
"""`_meta` key of a result that names its job (the MCP tasks layer turns it into a CreateTaskResult)."""
AS_TASK: contextvars.ContextVar[int | None] = contextvars.ContextVar("as_task", default=None)
"""Set (to the task's ttl in ms, or 0 for the default) while a task-augmented tools/call runs."""


class ConfirmSpend(BaseModel):
    """What the user is asked before an expensive call."""

    confirm: bool = Field(description="Go ahead and pay for this image call?")


class Asking:
    """Whether the user is being asked to confirm a call's cost right now: nothing is sent meanwhile, so the
    sync wait must not give up and tell the caller the image is "still being made"."""

    def __init__(self) -> None:
        self.now = False
        self.answered = False
        """The user answered since the sync wait last looked: the wait starts again from the answer."""


def confirmer(ctx: Context, arguments: Mapping[str, Any], asking: Asking | None = None) -> CostConfirmer:
    """Asks the user, through MCP elicitation, before a call above the confirmation threshold is sent. A client
    that cannot be asked (no elicitation, the 2026-07-28 era, a task running unattended) gets a refusal that
    names confirm_cost instead."""
    asking = asking or Asking()

    async def ask(estimate_usd: float) -> Confirmation:
        if arguments.get("confirm_cost"):
            return Confirmation.CONFIRMED
        capabilities = ctx.client_capabilities
        if AS_TASK.get() is not None or capabilities is None or capabilities.elicitation is None:
            return Confirmation.NOT_ASKED
        if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
            return Confirmation.NOT_ASKED
        asking.now = True
        try:
            answer = await ctx.elicit(f"This image call is estimated to cost ${estimate_usd:.4f}. Go ahead?",
                                      ConfirmSpend)
        except Exception as e:  # a client that fails the request: treat as no answer
            log.debug("elicitation failed: %s", type(e).__name__)
            return Confirmation.NOT_ASKED
        finally:
            asking.now, asking.answered = False, True
        if answer.action == "accept" and bool(answer.data.confirm):
            return Confirmation.CONFIRMED
        return Confirmation.DECLINED  # declined, cancelled, or accepted with "no"

    return ask


class ToolRunner:
    """Runs one paid tool call as a job and turns what became of it into a CallToolResult."""

    def __init__(self, settings: Settings, presenter: Presenter, use_cases: UseCases,
                 output_root: Path | None = None, links: DownloadLinks | None = None) -> None:
        self._settings = settings
        self._presenter = presenter
        self._use_cases = use_cases
        self._output_root = output_root
        """Served over HTTP: the output folder, under which each authenticated caller has a folder of their own."""
        self._links = links

    @property
    def remote(self) -> bool:
        """Served over HTTP: the callers are remote users, not the operator."""
        return self._output_root is not None

    def error(self, error: ImageServerError | str) -> ToolError:
        """An error as a tool error the caller reads; never with a secret in it."""
        text = error if isinstance(error, str) else for_caller(error, self.remote)
        return ToolError(scrub(text, self._settings.secrets))

    async def run(self, ctx: Context, tool: str, arguments: Mapping[str, Any], call: UseCaseCall) -> CallToolResult:
        asking = Asking()
        try:
            where = await self._placement(ctx, arguments, asking)
            submission = await self._submit(tool, arguments, where, call)
        except ImageServerError as e:
            raise self.error(e) from None
        jobs = await self._use_cases.jobs()
        if AS_TASK.get() is not None:
            jobs.detach(submission.job.job_id)
            return self.job_reference(submission.job)
        job = await self._wait(ctx, submission, asking)
        if not job.status.finished:
            jobs.detach(job.job_id)
            return self.still_working(job)
        return await self.finished(ctx, job, submission.note, arguments.get("inline"))

    async def _placement(self, ctx: Context, arguments: Mapping[str, Any], asking: Asking) -> Placement:
        """Whose call it is, where its images go, who confirms its cost, and whom OpenAI holds responsible."""
        owner = owner_of(ctx)
        signed_in = self.remote and owner != LOCAL_OWNER
        return placement(arguments, await self.roots(ctx, owner), owner, confirmer(ctx, arguments, asking),
                         safety_identifier_of(owner) if signed_in else None)

    async def finished(self, ctx: Context | None, job: Job, note: str | None = None, inline: str | None = None
                       ) -> CallToolResult:
        """The result of a finished job, as the original call would have shown it; `inline`: as this caller asked
        to be shown it instead (one that joined the job, or replayed it with its key, may ask otherwise)."""
        if job.status is not JobStatus.COMPLETED or job.is_error or job.outcome is None:
            raise self.error(job.error or f"The call ended {job.status.value} ({job.status_message}). Call the tool "
                             "again for a new result.")
        await (await self._use_cases.jobs()).mark_delivered(job)
        if ctx is not None:
            await announce_new_images(ctx)
        outcome = job.outcome if note is None else replace(job.outcome, notes=(*job.outcome.notes, note))
        shown = job.arguments if inline is None else {**job.arguments, "inline": inline}
        return await self.present(outcome, shown, job.job_id)

    def still_working(self, job: Job) -> CallToolResult:
        text = (f"The image is still being made (job {job.job_id}: {job.status_message}); the work goes on. Call "
                f"get_image_job with job_id \"{job.job_id}\" to wait for it and get the result. Do not call "
                f"{job.tool} again: that would pay twice.")
        output = ImageToolOutput(status="working", job_id=job.job_id, model="gpt-image-2",
                                 prompt=str(job.arguments.get("prompt", "")), requested=requested(job.arguments))
        return CallToolResult(content=[TextContent(type="text", text=text)],
                              structured_content=output.model_dump(mode="json"))

    def job_reference(self, job: Job) -> CallToolResult:
        """What a task-augmented call returns inside the server: the MCP tasks layer replaces it with a task."""
        result = self.still_working(job)
        result.meta = {JOB_META: job.job_id}
        return result

    async def roots(self, ctx: Context, owner: str) -> tuple[str, ...] | None:
        """The client's roots, when it offers them on the handshake era and enforcement is on. Served over HTTP,
        the server's own root instead, always: the caller's folder under the output folder. A remote client's
        roots name folders on another machine, and a stateless server could not ask for them anyway, so writes
        and local reads stay confined to that folder (fail closed); one user cannot read another's files."""
        if self._output_root is not None:
            home = self._output_root if owner == LOCAL_OWNER else self._output_root / owner_folder(owner)
            return (str(home),)
        if not self._settings.enforce_roots:
            return None
        capabilities = ctx.client_capabilities
        if capabilities is None or capabilities.roots is None:
            return None
        try:
            with warnings.catch_warnings():
                # Roots are deprecated in the 2026-07-28 era; on the handshake era they are what we have.
                warnings.simplefilter("ignore", MCPDeprecationWarning)
                result = await ctx.session.list_roots()
        except Exception as e:  # no back channel (2026-07-28 era) or a client that fails the request
            log.debug("roots unavailable: %s", type(e).__name__)
            return None
        return tuple(str(root.uri) for root in result.roots) or None

    async def present(self, outcome: Outcome, arguments: Mapping[str, Any], job_id: str | None = None
                      ) -> CallToolResult:
        try:
            blocks, previews, notes = await anyio.to_thread.run_sync(
                self._presenter.inline_images, outcome.images, arguments.get("inline", "preview"), outcome.contents)
        except Exception as e:  # the files are saved; a failed preview must not turn that into an error
            log.exception("inline preview failed")
            blocks, previews = [], [None] * len(outcome.images)
            notes = [f"No inline preview ({type(e).__name__}); the files on disk are complete."]
        infos = [self._presenter.image_info(image, preview)
                 for image, preview in zip(outcome.images, previews, strict=True)]
        if self._links is not None:  # a remote caller cannot open file_path: give them a link that works
            for info in infos:
                info.download_url = self._links.url(info.image_id, outcome.owner) if info.image_id else None
        secrets = self._settings.secrets
        # Everything outward passes the scrubber, values the API echoed back included.
        text = scrub(self._presenter.text(outcome, infos, notes), secrets)
        output = self._presenter.structured(outcome, infos, notes, requested(arguments))
        output.job_id = job_id
        content: list[Any] = [TextContent(type="text", text=text)]
        content += [ImageContent(type="image", data=data, mime_type=mime) for data, mime in blocks]
        content += [
            ResourceLink(type="resource_link", name=info.filename, uri=info.uri, mime_type=info.mime_type,
                         size=info.size_bytes, description=f"{info.width}x{info.height} full-resolution image")
            for info in infos
        ]
        return CallToolResult(content=content, structured_content=scrub_all(output.model_dump(mode="json"), secrets))

    async def _submit(self, tool: str, arguments: Mapping[str, Any], where: Placement, call: UseCaseCall
                      ) -> Submission:
        source = await self._use_cases.source()
        # Named as the edit names them when it loads them, so a refusal here reads the same ("image 2", "mask").
        references = [(f"image {i + 1}", ref) for i, ref in enumerate(arguments.get("images") or ())]
        if arguments.get("mask"):
            references.append(("mask", arguments["mask"]))
        digests = tuple([await source.digest(ref, role=role, roots=where.roots) for role, ref in references])
        key = arguments.get("idempotency_key") or None  # an empty key is no key
        ttl = AS_TASK.get()
        if ttl and key:  # the key promises its result for the whole window: a task's shorter ttl must not cut it
            ttl = max(ttl, IDEMPOTENCY_WINDOW_S * 1000)
        job_call = JobCall(owner=where.owner, tool=tool, fingerprint=fingerprint(tool, identity(arguments), digests),
                           arguments=call_arguments(arguments), idempotency_key=key,
                           **({"ttl_ms": ttl} if ttl else {}))
        jobs = await self._use_cases.jobs()
        return await jobs.submit(job_call, lambda progress: self._worded_for_caller(call(where, progress)))

    async def _worded_for_caller(self, work: Awaitable[Outcome]) -> Outcome:
        """The call's errors as its caller may read them, before the job records them: a job's error is shown
        to every replica's tasks/get and tasks/result, so a remote caller's must not name the state store's
        address or the operator's settings (those go to the log)."""
        try:
            return await work
        except StateStoreError as e:
            if not self.remote:
                raise
            worded = StateStoreError(for_caller(e, remote=True))
            worded.saved_paths = e.saved_paths
            raise worded from e

    async def _wait(self, ctx: Context, submission: Submission, asking: Asking) -> Job:
        jobs = await self._use_cases.jobs()
        job = submission.job
        timeout = self._settings.sync_wait_s or None

        async def until_done_or_timed_out(report: ProgressReporter) -> Job:
            while True:  # the sync wait counts only from the user's answer, if the cost was to be confirmed
                waited = await jobs.wait(job.owner, job.job_id, timeout, report)
                if waited.status.finished or not (asking.now or asking.answered):
                    return waited
                asking.answered = False

        try:
            return await with_progress(ctx, self._settings.heartbeat_s, until_done_or_timed_out)
        except BaseException:
            # This caller went away before hearing of a job id: the job stops unless another caller waits for it.
            with anyio.CancelScope(shield=True):
                await jobs.abandon(submission)
            raise
