"""FakeImageBackend: deterministic, offline placeholder images. Selectable like any other backend."""

from __future__ import annotations

import hashlib
import io
import textwrap
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Literal

import anyio
import anyio.to_thread
from PIL import Image, ImageDraw, ImageOps

from gpt_image_2_mcp.domain.ports import ImageBackend, PartialImageHandler
from gpt_image_2_mcp.domain.pricing import PER_MILLION, estimate_image_cost, input_image_tokens
from gpt_image_2_mcp.domain.render_settings import Background, OutputFormat, RenderOptions
from gpt_image_2_mcp.domain.values import (
    BackendResult,
    EditRequest,
    GeneratedImage,
    GenerationRequest,
    InputImage,
    Route,
    Usage,
)

from .placeholder_fonts import FREETYPE, drawable, font

PLACEHOLDER_NOTE = (
    "PLACEHOLDER: this image was drawn by the offline fake backend; no OpenAI API was called and nothing "
    "was spent. To get real gpt-image-2 images, set OPENAI_API_KEY in the server's environment (and remove "
    "GPT_IMAGE_2_BACKEND=fake if it is set), then restart the server."
)
_DEFAULT_EDGE = 1024
_MIN_EDGE = 64
"""The smallest side of a placeholder: a frame, a caption and a thumbnail need room (an edit of a 1x1 input
with size 'auto' would take its size, and drawing failed)."""
CALL_HISTORY = 64
"""How many calls a backend remembers by default: enough to inspect recent calls, small enough to stay flat."""


@dataclass(frozen=True, slots=True)
class InputSummary:
    """What the record keeps of an input image: its shape and a digest, never its bytes."""

    source: str
    mime_type: str
    width: int
    height: int
    has_alpha: bool
    size_bytes: int
    sha256: str

    @classmethod
    def of(cls, image: InputImage) -> InputSummary:
        digest = hashlib.sha256(image.data).hexdigest()
        return cls(image.source, image.mime_type, image.width, image.height, image.has_alpha, len(image.data), digest)


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One call as the fake backend remembers it: the request without its image bytes."""

    kind: Literal["generate", "edit"]
    prompt: str
    options: RenderOptions
    images: tuple[InputSummary, ...] = ()
    mask: InputSummary | None = None
    session_id: str | None = None
    turn: int | None = None

    @classmethod
    def of_edit(cls, request: EditRequest) -> CallRecord:
        images = tuple(InputSummary.of(i) for i in request.images)
        mask = InputSummary.of(request.mask) if request.mask else None
        return cls("edit", request.prompt, request.options, images, mask, request.session_id, request.turn)


@dataclass
class FakeImageBackend(ImageBackend):
    """Draws a gradient seeded by the prompt, with the prompt written on it, at the requested size.

    `calls` holds a summary of the last `history` calls (0 keeps none): a long-running server that keeps
    every request, input bytes included, grows without end.
    """

    latency_s: float = 0.0
    history: int = CALL_HISTORY
    calls: deque[CallRecord] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.calls = deque(maxlen=self.history)

    async def generate(
        self, request: GenerationRequest, on_partial: PartialImageHandler | None = None
    ) -> BackendResult:
        self.calls.append(CallRecord("generate", request.prompt, request.options))
        size = (request.options.size.width or _DEFAULT_EDGE, request.options.size.height or _DEFAULT_EDGE)
        return await self._produce(Scene(request.prompt, size, "generated"), request.options, 0, on_partial)

    async def edit(self, request: EditRequest, on_partial: PartialImageHandler | None = None) -> BackendResult:
        first = request.images[0]
        size = (request.options.size.width or max(first.width, _MIN_EDGE),
                request.options.size.height or max(first.height, _MIN_EDGE))
        # Hashing and decoding inputs of up to 50 MB each would stall the event loop: a worker thread does it.
        record, source = await anyio.to_thread.run_sync(_take_in, request, _thumbnail_edge(size))
        self.calls.append(record)
        label = f"edit of {len(request.images)} image(s)" + (" with mask" if request.mask else "")
        # The session and turn let a user check by eye which turn an edit continued from.
        caption = f"session {request.session_id}" if request.session_id else ""
        caption += f" · turn {request.turn}" if caption and request.turn is not None else ""
        image_tokens = sum(input_image_tokens(i.width, i.height) for i in request.images)
        scene = Scene(request.prompt, size, label, caption, source)
        return await self._produce(scene, request.options, image_tokens, on_partial)

    async def _produce(
        self, scene: Scene, options: RenderOptions, image_tokens: int, on_partial: PartialImageHandler | None
    ) -> BackendResult:
        """Wait out the simulated latency, streaming partials on the way, then draw the images.

        Pillow holds a thread for tens of milliseconds per large picture, so every picture is drawn in a
        worker thread: on the event loop it would hold up every other call the server is serving.
        """
        steps = options.partial_images if on_partial else 0
        pause = self.latency_s / (steps + 1)
        for index in range(steps):
            await anyio.sleep(pause)
            small = replace(scene, size=(max(16, scene.size[0] // 8), max(16, scene.size[1] // 8)),
                            label=f"partial {index + 1}")
            await on_partial(index, await anyio.to_thread.run_sync(render, small, options))  # type: ignore[misc]
        await anyio.sleep(pause)
        images = await anyio.to_thread.run_sync(_render_all, scene, options)
        per_image = estimate_image_cost(options.size, options.quality)
        usage = Usage(
            input_text_tokens=max(1, len(scene.prompt) // 4),
            input_image_tokens=image_tokens,
            output_tokens=round(per_image / PER_MILLION["image_out"] * 1_000_000) * options.n,
        )
        applied = {"size": f"{scene.size[0]}x{scene.size[1]}"}
        return BackendResult(images, usage, route=Route.FAKE, applied=applied, placeholder=True,
                             notes=(PLACEHOLDER_NOTE,))


@dataclass(frozen=True, slots=True)
class Scene:
    """What one placeholder shows besides its gradient: the prompt, its size and what kind of call made it."""

    prompt: str
    size: tuple[int, int]
    label: str
    caption: str = ""
    """For an edit in a session: the session id and turn."""
    source: Image.Image | None = None
    """For an edit: a thumbnail of the first input image, so the placeholder shows what was edited."""


def _take_in(request: EditRequest, edge: int) -> tuple[CallRecord, Image.Image | None]:
    """What an edit keeps of its inputs: a summary for the record and a thumbnail of the first image."""
    return CallRecord.of_edit(request), _thumbnail(request.images[0].data, edge)


def _thumbnail_edge(size: tuple[int, int]) -> int:
    """The longest side of the input thumbnail: a third of the picture's shorter side."""
    return max(8, min(size) // 3)


def _thumbnail(data: bytes, edge: int) -> Image.Image | None:
    """The encoded image scaled to fit edge x edge, or None if it cannot be decoded."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.draft("RGB", (edge, edge))  # JPEG decodes at a fraction of full size: much faster
            image.thumbnail((edge, edge))
            return image.convert("RGBA")
    except (OSError, ValueError, Image.DecompressionBombError):
        # The input was decoded once already when it was read; a placeholder still beats a failed call.
        return None


def _render_all(scene: Scene, options: RenderOptions) -> tuple[GeneratedImage, ...]:
    """The n final images of a call, numbered so they differ."""
    return tuple(
        GeneratedImage(render(replace(scene, label=f"{scene.label} #{i + 1}"), options), options.output_format)
        for i in range(options.n)
    )


def render(scene: Scene, options: RenderOptions) -> bytes:
    """A deterministic picture for (prompt, size, format): a gradient, a frame, the text and, for edits,
    the input's thumbnail."""
    image = _background(scene.prompt, scene.size, options)
    draw = ImageDraw.Draw(image)
    width, height = scene.size
    edge = max(2, min(width, height) // 64)
    draw.rectangle((edge, edge, width - edge, height - edge), outline=(255, 255, 255), width=edge)
    _write(draw, scene, edge)
    if scene.source is not None:
        _paste_thumbnail(image, draw, scene.source, edge)
    return _encode(image, options)


def _background(prompt: str, size: tuple[int, int], options: RenderOptions) -> Image.Image:
    """A two-colour gradient seeded by the prompt, translucent when a transparent background was asked for."""
    seed = hashlib.sha256(prompt.encode()).digest()
    a, b = tuple(seed[0:3]), tuple(seed[3:6])
    # Draw small and scale up: a smooth gradient at any size for a few milliseconds.
    tiny = Image.new("RGB", (2, 2))
    tiny.putdata([a, b, b, a])
    image = tiny.resize(size, Image.Resampling.BILINEAR)
    if options.background is Background.TRANSPARENT and options.output_format is not OutputFormat.JPEG:
        image = image.convert("RGBA")
        image.putalpha(200)
    return image


def _write(draw: ImageDraw.ImageDraw, scene: Scene, edge: int) -> None:
    """The header, the caption and as much of the prompt as fits, in characters the font can draw."""
    width, height = scene.size
    font_size = max(12, min(width, height) // 24)
    columns = max(10, int(width / (font_size * 0.6)) - 4)
    lines = ["FAKE BACKEND - placeholder", f"{width}x{height} · {scene.label}"]
    lines += [scene.caption, ""] if scene.caption else [""]
    lines += textwrap.wrap(scene.prompt, columns)[: max(1, (height // (font_size + 6)) - 6)]
    text = "\n".join(drawable(line) for line in lines)
    with FREETYPE:
        draw.multiline_text((edge * 4, edge * 4), text, fill=(255, 255, 255), font=font(font_size), spacing=6)


def _encode(image: Image.Image, options: RenderOptions) -> bytes:
    """The picture in the requested format, encoded for speed over size."""
    buffer = io.BytesIO()
    fmt = options.output_format
    quality = options.output_compression if options.output_compression is not None else 90
    if fmt is OutputFormat.PNG:
        image.save(buffer, "PNG", compress_level=1)
    elif fmt is OutputFormat.JPEG:
        image.convert("RGB").save(buffer, "JPEG", quality=max(1, quality))
    else:
        image.save(buffer, "WEBP", quality=quality, method=0)
    return buffer.getvalue()


def _paste_thumbnail(image: Image.Image, draw: ImageDraw.ImageDraw, source: Image.Image, edge: int) -> None:
    """Put the input's thumbnail, framed, in the bottom right corner (partials get a smaller copy)."""
    thumb = ImageOps.contain(source, (_thumbnail_edge(image.size),) * 2)
    left, top = image.width - edge * 4 - thumb.width, image.height - edge * 4 - thumb.height
    draw.rectangle((left - edge, top - edge, left + thumb.width + edge - 1, top + thumb.height + edge - 1),
                   fill=(255, 255, 255))
    image.paste(thumb, (left, top), thumb)  # through its own alpha: transparent areas show the white mat
