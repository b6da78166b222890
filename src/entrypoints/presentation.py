"""How an Outcome is shown to an MCP client: a text that stands alone, previews, links, structured data."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from gpt_image_2_mcp.domain.errors import OutputLocationError
from gpt_image_2_mcp.domain.outcomes import Outcome, OutcomeKind
from gpt_image_2_mcp.domain.ports import ArrivingImagesObserver, ImageCodec, ImageSink
from gpt_image_2_mcp.domain.values import ArrivedImage, Preview, SavedImage, base64_length

from .image_resources import image_uri
from .tool_outputs import ImageInfo, ImageToolOutput, PreviewInfo, UsageInfo

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

log = logging.getLogger(__name__)

InlineMode = Literal["preview", "full", "none"]
InlineBlock = tuple[str, str]
"""(base64 data, mime type) of one image shown inline."""

_VERBS = {
    OutcomeKind.GENERATE: "Generated",
    OutcomeKind.EDIT: "Edited",
    OutcomeKind.SESSION_START: "Edited",
    OutcomeKind.SESSION_TURN: "Edited",
}


_HEAD_STARTS_KEPT = 16
"""Previews started for results nobody has presented yet (a caller that went away): the oldest are dropped."""
_preview_pool: ThreadPoolExecutor | None = None


def _previews() -> ThreadPoolExecutor:
    # One pool per process, made at the first image. Decoding and encoding release the GIL, so a worker per core
    # keeps the cores busy; more would only hold more decoded images (~60 MB each at 4K) in memory at once.
    global _preview_pool
    if _preview_pool is None:
        from concurrent.futures import ThreadPoolExecutor  # imported with the first image, not at start-up

        workers = max(2, min(8, os.cpu_count() or 2))
        _preview_pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="preview")
    return _preview_pool


def _base64(data: bytes) -> str:
    import pybase64  # SIMD base64; imported with the first image, not at start-up

    return pybase64.b64encode_as_string(data)


def human_size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    return f"{n / 1024:.1f} KB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f} MB"


class Presenter(ArrivingImagesObserver):
    """Builds tool results under the client's size limits: previews inline, full files on disk.

    As the workflow's observer it starts each preview as the image arrives, on another core, while the call saves
    the image, books its cost, catalogues it and records its job; the result then picks the preview up."""

    def __init__(self, codec: ImageCodec, sink: ImageSink, max_edge: int, max_bytes: int) -> None:
        self._codec = codec
        self._sink = sink
        self._max_edge = max_edge
        self._max_bytes = max_bytes
        self._started: dict[str, tuple[int, Future[Preview]]] = {}
        """image id -> (the byte budget it was made for, the preview being made)."""
        self._lock = threading.Lock()  # arriving() runs on the event loop, inline_images() in a worker thread

    def arriving(self, images: Sequence[ArrivedImage], inline: str) -> None:
        if inline == "none":
            return
        budget = self._max_bytes // max(1, len(images))
        for image in images:
            if not image.readable or self._shown_as_saved(image.width, image.height, image.data, inline, budget):
                continue
            future = _previews().submit(self._codec.preview, image.data, self._max_edge, budget)
            with self._lock:
                self._started[image.image_id] = (budget, future)
                while len(self._started) > _HEAD_STARTS_KEPT:
                    self._started.pop(next(iter(self._started)))[1].cancel()

    def _take_started(self, image: SavedImage) -> tuple[int, Future[Preview]] | None:
        if image.image_id is None:
            return None
        with self._lock:
            return self._started.pop(image.image_id, None)

    def _shown_as_saved(self, width: int, height: int, data: bytes, mode: str, budget: int) -> bool:
        """No preview to make: the original fits the byte budget and was asked for in full, or is also within the
        edge limit (a JPEG or WEBP output at 1024 px often is)."""
        within_edge = 0 < max(width, height) <= self._max_edge
        return (mode == "full" or within_edge) and base64_length(len(data)) <= budget

    def inline_images(
        self, images: tuple[SavedImage, ...], mode: InlineMode, contents: tuple[bytes, ...] = ()
    ) -> tuple[list[InlineBlock], list[PreviewInfo | None], list[str]]:
        """Blocks to show, what each image showed, and notes. The byte budget is shared by all images.

        `contents` are the bytes the sink wrote for each image (Outcome.contents): shown as they are, they are by
        construction the saved bytes. Without them each file is read back through the sink's check that it is
        still the file written."""
        started = [self._take_started(image) for image in images]
        if mode == "none" or not images:
            for entry in started:
                if entry is not None:
                    entry[1].cancel()
            return [], [None] * len(images), []
        blocks: list[InlineBlock] = []
        infos: list[PreviewInfo | None] = []
        notes: list[str] = []
        budget = self._max_bytes // len(images)
        saved = contents if len(contents) == len(images) else [None] * len(images)
        for image, data, head_start in zip(images, saved, started, strict=True):
            try:
                shown = self._inline_one(image, data, mode, budget, notes, head_start)
            except OutputLocationError as e:  # a replayed result whose file went away since: say which, and why
                shown = None
                notes.append(f"No inline preview of {image.filename}: {e}")
            infos.append(shown[1] if shown else None)
            if shown:
                blocks.append(shown[0])
        return blocks, infos, notes

    def _inline_one(
        self, image: SavedImage, data: bytes | None, mode: InlineMode, budget: int, notes: list[str],
        head_start: tuple[int, Future[Preview]] | None = None,
    ) -> tuple[InlineBlock, PreviewInfo] | None:
        if data is None:
            data = self._sink.read_back(image)
        if self._shown_as_saved(image.width, image.height, data, mode, budget):
            if head_start is not None:
                head_start[1].cancel()
            text = _base64(data)
            return (text, image.mime_type), PreviewInfo(shown="full", width=image.width, height=image.height,
                                                        mime_type=image.mime_type, base64_bytes=len(text))
        if mode == "full":
            notes.append(f"{image.filename} is {human_size(image.size_bytes)}, over the inline budget; a preview "
                         "is shown instead. The full file is on disk.")
        if head_start is not None and head_start[0] == budget:
            preview = head_start[1].result()  # made from these very bytes (the ones saved), for this budget
        else:
            preview = self._codec.preview(data, self._max_edge, budget)
        if base64_length(len(preview.data)) > budget:
            notes.append(f"{image.filename}: even the smallest preview is over the inline budget; not shown.")
            return None
        text = _base64(preview.data)
        return (text, preview.mime_type), PreviewInfo(shown="preview", width=preview.width, height=preview.height,
                                                      mime_type=preview.mime_type, base64_bytes=len(text))

    @staticmethod
    def image_info(image: SavedImage, inline: PreviewInfo | None = None) -> ImageInfo:
        return ImageInfo(
            file_path=image.path, filename=image.filename, width=image.width, height=image.height,
            size_bytes=image.size_bytes, mime_type=image.mime_type,
            uri=image_uri(image.image_id) if image.image_id else Path(image.path).as_uri(),
            image_id=image.image_id, rescued=image.rescued, inline=inline,
        )

    def structured(self, outcome: Outcome, infos: list[ImageInfo], notes: list[str],
                   requested: dict[str, Any]) -> ImageToolOutput:
        return ImageToolOutput(
            model=outcome.model, prompt=outcome.prompt, revised_prompt=outcome.revised_prompt,
            backend=outcome.backend, route=outcome.route.value, placeholder=outcome.placeholder,
            requested=requested, applied=outcome.applied, images=infos,
            partial_images=[self.image_info(p) for p in outcome.partials],
            usage=UsageInfo(**outcome.usage.as_dict()) if outcome.usage else None,  # type: ignore[arg-type]
            cost_usd_estimated=outcome.cost_usd, request_id=outcome.request_id, notes=[*outcome.notes, *notes],
            session_id=outcome.session_id, turn=outcome.turn, parent_turn=outcome.parent_turn,
        )

    def text(self, outcome: Outcome, infos: list[ImageInfo], notes: list[str]) -> str:
        """A text that stands alone for clients that drop image blocks: paths, sizes, settings, cost."""
        lines: list[str] = []
        if outcome.placeholder:
            lines.append("⚠ " + outcome.notes[0])
        lines.append(f"{_VERBS[outcome.kind]} {len(infos)} image(s) with {outcome.model}{_where(outcome)} "
                     f"via {outcome.route}:")
        lines += [_image_line(info) for info in infos]
        if outcome.revised_prompt:
            lines.append(f"Revised prompt: {outcome.revised_prompt}")
        lines.append("Settings: " + ", ".join(f"{k}={v}" for k, v in outcome.applied.items()))
        if usage := outcome.usage:
            lines.append(f"Tokens: {usage.input_text_tokens} text in, {usage.input_image_tokens} image in, "
                         f"{usage.output_tokens} out ({usage.total_tokens} total)")
        cost = f"Estimated cost: ${outcome.cost_usd:.4f}"
        lines.append(cost + nothing_spent(outcome))
        if outcome.request_id:
            lines.append(f"Request id: {outcome.request_id}")
        if outcome.partials:
            lines.append("Partial images saved: " + ", ".join(p.path for p in outcome.partials))
        lines += [n for n in (*outcome.notes, *notes) if not (outcome.placeholder and n == outcome.notes[0])]
        return "\n".join(lines)


def nothing_spent(outcome: Outcome) -> str:
    """What follows a placeholder's estimated cost (what the real call would cost), lest it read as money spent."""
    return " (placeholder: nothing was spent)" if outcome.placeholder else ""


def _where(outcome: Outcome) -> str:
    if not outcome.session_id:
        return ""
    branch = f", from turn {outcome.parent_turn}" if outcome.parent_turn is not None else ""
    return f" (session {outcome.session_id}, turn {outcome.turn}{branch})"


def _image_line(info: ImageInfo) -> str:
    if info.inline is None:
        shown = "; not shown inline"
    elif info.inline.shown == "full":
        shown = "; shown inline in full"
    else:
        shown = f"; inline preview {info.inline.width}x{info.inline.height} {info.inline.mime_type}"
    rescued = " — RESCUED: the output folder failed, the file is in the rescue folder" if info.rescued else ""
    return (f"- {info.file_path} ({info.width}x{info.height}, {human_size(info.size_bytes)}, {info.mime_type}"
            f"{shown}){rescued}")
