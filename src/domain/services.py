"""Use cases: generate, edit, and edit sessions. Each validates first, spends second, saves third."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .errors import BackendProtocolError, ImageServerError, InvalidRequest, SessionNotFound
from .ports import ImageBackend, ImageCodec, ImageSink, ImageSource, ProgressReporter, SessionRepository
from .pricing import cost_from_usage, estimate_cost, estimate_image_cost
from .sessions import EditSession, Turn
from .values import (
    MAX_EDIT_INPUTS,
    MODEL,
    BackendResult,
    EditRequest,
    GenerationRequest,
    InputImage,
    RenderOptions,
    SavedImage,
    Usage,
)

log = logging.getLogger(__name__)
DEFAULT_OPTIONS = RenderOptions()


async def _no_progress(progress: float, total: float | None, message: str) -> None:
    return None


@dataclass(frozen=True, slots=True)
class Placement:
    """Where and how the images of one call are written, and which folders the caller may use."""

    output_dir: str | None = None
    filename_prefix: str | None = None
    roots: tuple[str, ...] | None = None
    save_partials: bool = False


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a call produced, ready for presentation."""

    kind: str
    prompt: str
    options: RenderOptions
    images: tuple[SavedImage, ...]
    usage: Usage | None
    cost_usd: float
    route: str
    backend: str
    applied: dict[str, object]
    placeholder: bool = False
    notes: tuple[str, ...] = ()
    request_id: str | None = None
    partials: tuple[SavedImage, ...] = ()
    session_id: str | None = None
    turn: int | None = None
    parent_turn: int | None = None
    model: str = MODEL


class ImageWorkflow:
    """The shared tail of every image call: run the backend, save what it returned, report."""

    def __init__(self, backend: ImageBackend, sink: ImageSink, codec: ImageCodec) -> None:
        self._backend = backend
        self._sink = sink
        self._codec = codec

    def prepare_folder(self, placement: Placement) -> str:
        return self._sink.prepare(placement.output_dir, placement.roots)

    async def run(
        self,
        kind: str,
        request: GenerationRequest | EditRequest,
        placement: Placement,
        folder: str,
        progress: ProgressReporter,
    ) -> Outcome:
        options = request.options
        log.debug(
            "%s: pre-flight estimate $%.4f for %s", kind, estimate_cost(options), options.applied()
        )
        steps = options.partial_images + 2
        await progress(0, steps, "request accepted; waiting for the image API")
        partials: list[SavedImage] = []

        async def on_partial(index: int, data: bytes) -> None:
            if placement.save_partials:
                partials.append(self._store(data, folder, placement, f"partial{index}", options)[0])
            await progress(index + 1, steps, f"partial image {index + 1} of {options.partial_images} received")

        call = self._backend.generate if isinstance(request, GenerationRequest) else self._backend.edit
        result = await call(request, on_partial if options.partial_images else None)  # type: ignore[arg-type]
        # Paid-for bytes go to disk before anything else can fail; no await until they are saved.
        images, unreadable = self._store_all(result, folder, placement, options)
        if unreadable:
            raise BackendProtocolError(
                f"The API returned data that is not a readable image; it was kept at {', '.join(unreadable)}."
            )
        await progress(steps, steps, f"saved {len(images)} image(s)")
        return Outcome(
            kind=kind,
            prompt=request.prompt,
            options=options,
            images=tuple(images),
            usage=result.usage,
            cost_usd=self._cost(result, options),
            route=result.route,
            backend=self._backend.name,
            applied={**options.applied(), **result.applied},
            placeholder=result.placeholder,
            notes=result.notes,
            request_id=result.request_id,
            partials=tuple(partials),
        )

    def _store_all(
        self, result: BackendResult, folder: str, placement: Placement, options: RenderOptions
    ) -> tuple[list[SavedImage], list[str]]:
        if not result.images:
            raise BackendProtocolError("The API answered without any image. Try again; if it persists, "
                                       "rephrase the prompt.", request_id=result.request_id)
        images: list[SavedImage] = []
        unreadable: list[str] = []
        many = len(result.images) > 1
        for index, image in enumerate(result.images):
            saved, readable = self._store(image.data, folder, placement, f"{index + 1}" if many else None, options)
            if readable:
                images.append(saved)
            else:
                unreadable.append(saved.path)
        return images, unreadable

    def _store(
        self, data: bytes, folder: str, placement: Placement, label: str | None, options: RenderOptions
    ) -> tuple[SavedImage, bool]:
        try:
            width, height, mime = self._codec.probe(data)
        except ImageServerError:
            width = height = 0
            mime = options.output_format.mime_type
        extension = mime.split("/")[-1].replace("jpeg", "jpg")
        stored = self._sink.save(
            data, folder=folder, extension=extension, prefix=placement.filename_prefix, label=label
        )
        saved = SavedImage(stored.path, stored.filename, width, height, stored.size_bytes, mime, stored.rescued)
        return saved, width > 0

    @staticmethod
    def _cost(result: BackendResult, options: RenderOptions) -> float:
        if result.usage is None:
            return estimate_cost(options)
        unpriced = estimate_image_cost(options.size, options.quality) * result.unpriced_images
        return round(cost_from_usage(result.usage) + unpriced, 6)


class GenerateImage:
    """Text to image: validate, call the backend, save every image, report."""

    def __init__(self, workflow: ImageWorkflow) -> None:
        self._workflow = workflow

    async def __call__(
        self,
        request: GenerationRequest,
        placement: Placement = Placement(),
        progress: ProgressReporter = _no_progress,
    ) -> Outcome:
        folder = self._workflow.prepare_folder(placement)
        return await self._workflow.run("generate", request, placement, folder, progress)


class EditImage:
    """Edit or compose 1..16 reference images (and a mask): read inputs locally, then call the backend."""

    def __init__(self, workflow: ImageWorkflow, source: ImageSource) -> None:
        self._workflow = workflow
        self._source = source

    async def load_inputs(
        self, references: Sequence[str], mask: str | None, roots: Sequence[str] | None, own_references: bool
    ) -> tuple[tuple[InputImage, ...], InputImage | None]:
        if not 1 <= len(references) <= MAX_EDIT_INPUTS:
            raise InvalidRequest(f"Give 1..{MAX_EDIT_INPUTS} reference images (got {len(references)}).")
        # A session's previous turn is this server's own output: it is read without the roots check.
        reference_roots = None if own_references else roots
        tasks = [
            self._source.load(ref, role=f"image {i + 1}", roots=reference_roots) for i, ref in enumerate(references)
        ]
        if mask:
            tasks.append(self._source.load(mask, role="mask", roots=roots))
        loaded = await asyncio.gather(*tasks)
        return tuple(loaded[: len(references)]), (loaded[-1] if mask else None)

    async def __call__(
        self,
        prompt: str,
        references: Sequence[str],
        mask: str | None = None,
        options: RenderOptions = DEFAULT_OPTIONS,
        placement: Placement = Placement(),
        progress: ProgressReporter = _no_progress,
        own_references: bool = False,
    ) -> Outcome:
        folder = self._workflow.prepare_folder(placement)
        images, mask_image = await self.load_inputs(references, mask, placement.roots, own_references)
        request = EditRequest(prompt, images, mask_image, options)
        return await self._workflow.run("edit", request, placement, folder, progress)


class EditSessions:
    """Iterative editing: each turn edits the previous (or a chosen) turn's image."""

    def __init__(
        self,
        edit: EditImage,
        repository: SessionRepository,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._edit = edit
        self._repository = repository
        self._clock = clock
        self._locks: dict[str, asyncio.Lock] = {}

    async def start(
        self,
        prompt: str,
        references: Sequence[str],
        mask: str | None = None,
        options: RenderOptions = DEFAULT_OPTIONS,
        placement: Placement = Placement(),
        progress: ProgressReporter = _no_progress,
    ) -> Outcome:
        outcome = await self._edit(prompt, references, mask, options, placement, progress)
        now = self._clock()
        session = EditSession(id=f"es_{secrets.token_hex(6)}", created_at=now, options=options)
        turn = session.record(prompt, tuple(i.path for i in outcome.images), now, None)
        self._repository.add(session)
        return dataclasses.replace(outcome, kind="start_edit_session", session_id=session.id, turn=turn.turn)

    async def continue_(
        self,
        session_id: str,
        prompt: str,
        overrides: dict[str, object],
        from_turn: int | None = None,
        mask: str | None = None,
        placement: Placement = Placement(),
        progress: ProgressReporter = _no_progress,
    ) -> Outcome:
        try:
            self._repository.get(session_id)  # fail fast, before waiting on the lock
        except SessionNotFound:
            self._locks.pop(session_id, None)  # an expired or evicted session's lock
            raise
        lock = self._locks.setdefault(session_id, asyncio.Lock())
        async with lock:
            session = self._repository.get(session_id)
            base: Turn = session.turn(from_turn) if from_turn is not None else session.last
            options = dataclasses.replace(session.options, **overrides) if overrides else session.options
            outcome = await self._edit(
                prompt, [base.file_paths[0]], mask, options, placement, progress, own_references=True
            )
            turn = session.record(prompt, tuple(i.path for i in outcome.images), self._clock(), base.turn)
            return dataclasses.replace(
                outcome, kind="continue_edit_session", session_id=session.id, turn=turn.turn,
                parent_turn=base.turn,
            )

    def end(self, session_id: str) -> EditSession:
        self._locks.pop(session_id, None)
        return self._repository.remove(session_id)

    def list(self) -> list[EditSession]:
        return self._repository.list()
