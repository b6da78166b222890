"""Use cases: generate, edit, and edit sessions. Each validates first, spends second, saves third."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from .backlog import StoreBacklog
from .catalogue import ImageRecord, new_image_id
from .errors import BackendProtocolError, ImageServerError, InputImageError, InvalidRequest, OwnImageUnreadable
from .finishing import to_the_end
from .outcomes import Outcome, OutcomeKind, Placement
from .ports import (
    ArrivingImagesObserver,
    ImageBackend,
    ImageCatalogue,
    ImageCodec,
    ImageSink,
    ImageSource,
    PartialImageHandler,
    ProgressReporter,
)
from .pricing import cost_from_usage, estimate_cost, estimate_image_cost
from .render_settings import RenderOptions
from .spend import SpendEntry, SpendGuard
from .values import (
    MAX_EDIT_INPUTS,
    ArrivedImage,
    BackendResult,
    EditRequest,
    GenerationRequest,
    InputImage,
    SavedImage,
    file_extension,
)

log = logging.getLogger(__name__)

Produce = Callable[[PartialImageHandler | None], Awaitable[BackendResult]]
"""One bound backend call, waiting only for the partial-image handler."""


async def no_progress(progress: float, total: float | None, message: str) -> None:
    return None


DEFAULT_PLACEMENT = Placement()
DEFAULT_OPTIONS = RenderOptions()


def _shortfall(asked: int, came: int) -> tuple[str, ...]:
    """A note when the API returned fewer images than asked for (it may hold some back, e.g. by moderation)."""
    if came >= asked:
        return ()
    return (f"Asked for {asked} image(s); the API returned {came}, and only those were saved.",)


@dataclass
class Kept:
    """What a call saved of the API's answer: the readable images (with the bytes as saved), and the paths of
    what was not a readable image (saved all the same: it was paid for)."""

    images: list[SavedImage] = dataclasses.field(default_factory=list)
    contents: list[bytes] = dataclasses.field(default_factory=list)
    unreadable: list[str] = dataclasses.field(default_factory=list)

    def add(self, saved: SavedImage, arrived: ArrivedImage) -> None:
        if arrived.readable:
            self.images.append(saved)
            self.contents.append(arrived.data)
        else:
            self.unreadable.append(saved.path)

    def notes(self) -> tuple[str, ...]:
        if not self.unreadable:
            return ()
        return (f"{len(self.unreadable)} more answer(s) from the API were not readable images; kept at "
                f"{', '.join(self.unreadable)}.",)

    def failure(self, request_id: str | None) -> BackendProtocolError:
        """The error when nothing readable came back."""
        if self.unreadable:
            return BackendProtocolError("The API returned data that is not a readable image; it was kept at "
                                        f"{', '.join(self.unreadable)}. Try again.", request_id=request_id)
        return BackendProtocolError("The API answered without any image. Try again; if it persists, rephrase "
                                    "the prompt.", request_id=request_id)


class ImageWorkflow:
    """The shared tail of every image call: run one backend call, save what it returned, catalogue it."""

    def __init__(
        self,
        sink: ImageSink,
        codec: ImageCodec,
        catalogue: ImageCatalogue,
        spend: SpendGuard,
        clock: Callable[[], float] = time.time,
        observer: ArrivingImagesObserver | None = None,
        backlog: StoreBacklog | None = None,
    ) -> None:
        self._sink = sink
        self._codec = codec
        self._catalogue = catalogue
        self._spend = spend
        self._clock = clock
        self._observer = observer
        self._backlog = backlog or StoreBacklog()

    def prepare_folder(self, placement: Placement) -> str:
        return self._sink.prepare(placement.output_dir, placement.roots)

    async def run(
        self,
        kind: OutcomeKind,
        request: GenerationRequest | EditRequest,
        produce: Produce,
        placement: Placement,
        folder: str,
        progress: ProgressReporter,
    ) -> Outcome:
        options = request.options
        inputs = [(image.width, image.height) for image in request.images] if isinstance(request, EditRequest) else []
        estimate = estimate_cost(options, inputs)
        log.debug("%s: pre-flight estimate $%.4f for %s", kind, estimate, options.applied())
        booked = await self._spend.authorize(placement.owner, kind.value, estimate, placement.confirm)
        steps = options.partial_images + 2
        await progress(0, steps, "request accepted; waiting for the image API")
        partials: list[SavedImage] = []

        async def on_partial(index: int, data: bytes) -> None:
            if placement.save_partials:
                partials.append(self._save(self._arrived(data, options), folder, placement, f"partial{index}"))
            await progress(index + 1, steps, f"partial image {index + 1} of {options.partial_images} received")

        try:
            result = await produce(on_partial if options.partial_images else None)
        except BaseException as e:
            await asyncio.shield(self._settle(booked, 0.0))  # nothing came back: nothing to book against it
            if partials and isinstance(e, ImageServerError):  # they are on disk: say so, and where
                e.args = (f"{e} The {len(partials)} partial image(s) received before that were kept: "
                          f"{', '.join(p.path for p in partials)}.",)
            elif isinstance(e, asyncio.CancelledError):  # asked to stop: a cancelled call leaves nothing behind
                for partial in partials:
                    self._sink.discard(partial)
            raise
        # Paid-for bytes go to disk before anything else can fail; no await until they are saved.
        kept = self._store_all(result, folder, placement, options)
        if not kept.images:  # the API answered 200 with nothing readable: it may still have charged for it
            await to_the_end(self._settle(booked, 0.0 if result.placeholder else self._cost(result, options)))
            raise kept.failure(result.request_id)
        outcome = self._outcome(kind, request, placement, result, kept, partials)
        return await to_the_end(self._conclude(outcome, booked, steps, progress))

    async def _conclude(self, outcome: Outcome, booked: SpendEntry, steps: int, progress: ProgressReporter
                        ) -> Outcome:
        """The images are saved: book what they cost and say so."""
        await self._settle(booked, 0.0 if outcome.placeholder else outcome.cost_usd)
        await progress(steps, steps, f"saved {len(outcome.images)} image(s)")
        return outcome

    def _outcome(self, kind: OutcomeKind, request: GenerationRequest | EditRequest, placement: Placement,
                 result: BackendResult, kept: Kept, partials: list[SavedImage]) -> Outcome:
        options = request.options
        return Outcome(
            kind=kind,
            owner=placement.owner,
            prompt=request.prompt,
            images=tuple(kept.images),
            usage=result.usage,
            cost_usd=self._cost(result, options),
            route=result.route,
            applied={**options.applied(), **result.applied, "n": len(kept.images)},
            placeholder=result.placeholder,
            notes=(*result.notes, *_shortfall(options.n, len(result.images)), *kept.notes()),
            request_id=result.request_id,
            revised_prompt=next((i.revised_prompt for i in result.images if i.revised_prompt), None),
            partials=tuple(partials),
            contents=tuple(kept.contents),
        )

    def _tell_observer(self, images: Sequence[ArrivedImage], inline: str) -> None:
        # The previews can start on another core while the images are written and the call books, catalogues
        # and records its job.
        if self._observer is None:
            return
        try:
            self._observer.arriving(images, inline)
        except Exception:  # the save comes next whatever happens: an observer that fails costs the head start
            log.exception("the arriving-images observer failed")

    async def _settle(self, booked: SpendEntry, actual_usd: float) -> None:
        try:
            await self._spend.settle(booked, actual_usd)
        except ImageServerError as e:  # the images are saved; a ledger that failed must not fail the call
            what = f"booking ${actual_usd:.4f} for call {booked.call_id} of {booked.owner}"
            log.warning("%s failed (tried again until the state store answers): %s", what, e)
            self._backlog.later(what, functools.partial(self._spend.settle, booked, actual_usd))

    def _store_all(
        self, result: BackendResult, folder: str, placement: Placement, options: RenderOptions
    ) -> Kept:
        """Save every image the API returned, readable or not (each was paid for)."""
        arrived = [self._arrived(image.data, options) for image in result.images]
        self._tell_observer(arrived, placement.inline)  # starts work elsewhere; nothing it does can stop the save
        many = len(arrived) > 1
        kept = Kept()
        for index, image in enumerate(arrived):
            saved = self._save(image, folder, placement, f"{index + 1}" if many else None)
            kept.add(saved, image)
        return kept

    def _arrived(self, data: bytes, options: RenderOptions) -> ArrivedImage:
        try:
            width, height, mime = self._codec.probe(data)
        except ImageServerError:  # kept all the same: it was paid for
            width = height = 0
            mime = options.output_format.mime_type
        return ArrivedImage(new_image_id(), data, width, height, mime)

    def _save(self, image: ArrivedImage, folder: str, placement: Placement, label: str | None) -> SavedImage:
        stored = self._sink.save(image.data, folder=folder, extension=file_extension(image.mime_type),
                                 prefix=placement.filename_prefix, label=label)
        return SavedImage(stored.path, stored.filename, image.width, image.height, stored.size_bytes,
                          image.mime_type, stored.rescued, stored.file_id, image.image_id)

    async def record(self, outcome: Outcome) -> Outcome:
        """Catalogue the outcome's images (under its session and turn, if any). The images are on disk already:
        a catalogue that fails costs their resource links, not the call, and the result says so."""
        now = self._clock()
        records = [
            ImageRecord(image.image_id or new_image_id(), outcome.owner, image, outcome.prompt, now,
                        dict(outcome.applied), outcome.session_id, outcome.turn)
            for image in outcome.images
        ]
        try:
            await self._catalogue.add(records)
        except ImageServerError as e:
            what = f"cataloguing {', '.join(image.path for image in outcome.images)}"
            log.warning("%s failed (tried again until the state store answers): %s", what, e)
            self._backlog.later(what, functools.partial(self._catalogue.add, records))
            note = (f"The images are saved but not catalogued yet ({e}); that is tried again until the state "
                    "store answers, and their image:// links resolve from then on.")
            return dataclasses.replace(outcome, notes=(*outcome.notes, note))
        return outcome

    @staticmethod
    def _cost(result: BackendResult, options: RenderOptions) -> float:
        if result.usage is None:
            return estimate_cost(options)
        unpriced = estimate_image_cost(options.size, options.quality) * result.unpriced_images
        return round(cost_from_usage(result.usage) + unpriced, 6)


class GenerateImage:
    """Text to image: validate, call the backend, save every image, report."""

    def __init__(self, backend: ImageBackend, workflow: ImageWorkflow) -> None:
        self._backend = backend
        self._workflow = workflow

    async def __call__(
        self,
        request: GenerationRequest,
        placement: Placement = DEFAULT_PLACEMENT,
        progress: ProgressReporter = no_progress,
    ) -> Outcome:
        folder = self._workflow.prepare_folder(placement)
        produce = functools.partial(self._backend.generate, request)
        outcome = await self._workflow.run(OutcomeKind.GENERATE, request, produce, placement, folder, progress)
        return await to_the_end(self._workflow.record(outcome))


@dataclass(frozen=True, slots=True)
class EditInputs:
    """What to edit: 1..16 reference images (paths, file://, http(s) or data URLs) and an optional mask."""

    references: tuple[str, ...]
    mask: str | None = None
    own_references: bool = False
    """The references are this server's own output (a session's earlier turn): no roots check."""

    def __post_init__(self) -> None:
        if not 1 <= len(self.references) <= MAX_EDIT_INPUTS:
            raise InvalidRequest(f"Give 1..{MAX_EDIT_INPUTS} reference images (got {len(self.references)}).")


@dataclass(frozen=True, slots=True)
class TurnOf:
    """The edit session turn a request makes, for backends that show it."""

    session_id: str
    turn: int


class EditImage:
    """Edit or compose 1..16 reference images (and a mask): read inputs locally, then call the backend."""

    def __init__(self, backend: ImageBackend, workflow: ImageWorkflow, source: ImageSource) -> None:
        self._backend = backend
        self._workflow = workflow
        self._source = source

    async def load_inputs(
        self, inputs: EditInputs, roots: Sequence[str] | None
    ) -> tuple[tuple[InputImage, ...], InputImage | None]:
        reference_roots = None if inputs.own_references else roots
        loads = [self._reference(ref, f"image {i + 1}", reference_roots, inputs.own_references)
                 for i, ref in enumerate(inputs.references)]
        if inputs.mask:
            loads.append(self._source.load(inputs.mask, role="mask", roots=roots))
        loaded = await asyncio.gather(*loads)
        count = len(inputs.references)
        return tuple(loaded[:count]), (loaded[-1] if inputs.mask else None)

    async def _reference(self, reference: str, role: str, roots: Sequence[str] | None, own: bool) -> InputImage:
        try:
            return await self._source.load(reference, role=role, roots=roots)
        except InputImageError as e:
            if own:  # not a path the caller gave: "check the path" would be no help
                raise OwnImageUnreadable(str(e)) from e
            raise

    async def __call__(
        self,
        prompt: str,
        inputs: EditInputs,
        options: RenderOptions = DEFAULT_OPTIONS,
        placement: Placement = DEFAULT_PLACEMENT,
        progress: ProgressReporter = no_progress,
    ) -> Outcome:
        outcome = await self.make(prompt, inputs, options, placement, progress)
        return await to_the_end(self.record(outcome))

    async def record(self, outcome: Outcome) -> Outcome:
        return await self._workflow.record(outcome)

    async def make(
        self,
        prompt: str,
        inputs: EditInputs,
        options: RenderOptions = DEFAULT_OPTIONS,
        placement: Placement = DEFAULT_PLACEMENT,
        progress: ProgressReporter = no_progress,
        turn_of: TurnOf | None = None,
        kind: OutcomeKind = OutcomeKind.EDIT,
    ) -> Outcome:
        """The edit, saved but not yet catalogued: a session catalogues it once its turn is recorded."""
        folder = self._workflow.prepare_folder(placement)
        images, mask = await self.load_inputs(inputs, placement.roots)
        request = EditRequest(prompt, images, mask, options, *((turn_of.session_id, turn_of.turn) if turn_of else ()))
        produce = functools.partial(self._backend.edit, request)
        return await self._workflow.run(kind, request, produce, placement, folder, progress)
