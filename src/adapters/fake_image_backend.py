"""FakeImageBackend: deterministic, offline placeholder images. Selectable like any other backend."""

from __future__ import annotations

import asyncio
import hashlib
import io
import textwrap
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from PIL import Image, ImageDraw, ImageFont

from gpt_image_2_mcp.domain.ports import ImageBackend, PartialImageHandler
from gpt_image_2_mcp.domain.pricing import PER_MILLION, estimate_image_cost
from gpt_image_2_mcp.domain.values import (
    BackendResult,
    Background,
    EditRequest,
    GeneratedImage,
    GenerationRequest,
    InputImage,
    OutputFormat,
    RenderOptions,
    Usage,
)

PLACEHOLDER_NOTE = (
    "PLACEHOLDER: this image was drawn by the offline fake backend; no OpenAI API was called and nothing "
    "was spent. To get real gpt-image-2 images, set OPENAI_API_KEY in the server's environment (and remove "
    "GPT_IMAGE_2_BACKEND=fake if it is set), then restart the server."
)
_DEFAULT_EDGE = 1024
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
    name: str = "fake"
    calls: deque[CallRecord] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.calls = deque(maxlen=self.history)

    async def generate(
        self, request: GenerationRequest, on_partial: PartialImageHandler | None = None
    ) -> BackendResult:
        self.calls.append(CallRecord("generate", request.prompt, request.options))
        size = (request.options.size.width or _DEFAULT_EDGE, request.options.size.height or _DEFAULT_EDGE)
        return await self._produce(request.prompt, request.options, size, "generated", 0, on_partial)

    async def edit(self, request: EditRequest, on_partial: PartialImageHandler | None = None) -> BackendResult:
        self.calls.append(CallRecord.of_edit(request))
        first = request.images[0]
        size = (request.options.size.width or first.width, request.options.size.height or first.height)
        label = f"edit of {len(request.images)} image(s)" + (" with mask" if request.mask else "")
        image_tokens = sum(max(1, i.width * i.height // 1_048_576) * 1024 for i in request.images)
        return await self._produce(request.prompt, request.options, size, label, image_tokens, on_partial)

    async def _produce(
        self,
        prompt: str,
        options: RenderOptions,
        size: tuple[int, int],
        label: str,
        image_tokens: int,
        on_partial: PartialImageHandler | None,
    ) -> BackendResult:
        steps = options.partial_images if on_partial else 0
        for index in range(steps):
            await asyncio.sleep(self.latency_s / (steps + 1))
            small = (max(16, size[0] // 8), max(16, size[1] // 8))
            await on_partial(index, render(prompt, small, options, f"partial {index + 1}"))  # type: ignore[misc]
        await asyncio.sleep(self.latency_s / (steps + 1) if steps else self.latency_s)
        images = tuple(
            GeneratedImage(render(f"{prompt}", size, options, f"{label} #{i + 1}"), options.output_format)
            for i in range(options.n)
        )
        per_image = estimate_image_cost(options.size, options.quality)
        usage = Usage(
            input_text_tokens=max(1, len(prompt) // 4),
            input_image_tokens=image_tokens,
            output_tokens=round(per_image / PER_MILLION["image_out"] * 1_000_000) * options.n,
        )
        applied = {"size": f"{size[0]}x{size[1]}"}
        return BackendResult(images, usage, route="fake", applied=applied, placeholder=True, notes=(PLACEHOLDER_NOTE,))


def render(prompt: str, size: tuple[int, int], options: RenderOptions, label: str) -> bytes:
    """A deterministic picture for (prompt, size, format): a gradient, a frame and the prompt text."""
    seed = hashlib.sha256(prompt.encode()).digest()
    a, b = tuple(seed[0:3]), tuple(seed[3:6])
    # Draw small and scale up: a smooth gradient at any size for a few milliseconds.
    tiny = Image.new("RGB", (2, 2))
    tiny.putdata([a, b, b, a])
    image = tiny.resize(size, Image.Resampling.BILINEAR)
    transparent = options.background is Background.TRANSPARENT and options.output_format is not OutputFormat.JPEG
    if transparent:
        image = image.convert("RGBA")
        image.putalpha(200)
    draw = ImageDraw.Draw(image)
    width, height = size
    edge = max(2, min(width, height) // 64)
    draw.rectangle((edge, edge, width - edge, height - edge), outline=(255, 255, 255), width=edge)
    font_size = max(12, min(width, height) // 24)
    font = ImageFont.load_default(size=font_size)
    columns = max(10, int(width / (font_size * 0.6)) - 4)
    lines = ["FAKE BACKEND - placeholder", f"{width}x{height} · {label}", ""]
    lines += textwrap.wrap(prompt, columns)[: max(1, (height // (font_size + 6)) - 6)]
    draw.multiline_text((edge * 4, edge * 4), "\n".join(lines), fill=(255, 255, 255), font=font, spacing=6)
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
