"""Value objects: what a request, an image, usage and cost are, and the rules they obey."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from .errors import InputImageError, InvalidRequest
from .render_settings import Moderation, OutputFormat, RenderOptions

MODEL = "gpt-image-2"
MAX_PROMPT_CHARS = 32_000
MAX_EDIT_INPUTS = 16
MAX_INPUT_BYTES = 50 * 1024 * 1024
MAX_MASK_BYTES = 4 * 1024 * 1024


def file_extension(mime_type: str) -> str:
    """The usual file name extension of an image MIME type ('image/jpeg' -> 'jpg')."""
    return mime_type.split("/")[-1].replace("jpeg", "jpg")


def base64_length(n: int) -> int:
    """Characters of base64 for n bytes: what an inline image costs in a result."""
    return 4 * ((n + 2) // 3)


class Route(StrEnum):
    """Which way a backend made the images."""

    IMAGES = "images"
    RESPONSES = "responses"
    FAKE = "fake"

    @property
    def backend(self) -> str:
        """'fake' for offline placeholders, 'openai' for both real API routes."""
        return "fake" if self is Route.FAKE else "openai"


def _check_prompt(prompt: str) -> None:
    if not prompt or not prompt.strip():
        raise InvalidRequest("The prompt is empty: describe the image you want.")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise InvalidRequest(
            f"The prompt has {len(prompt):,} characters; gpt-image-2 accepts at most "
            f"{MAX_PROMPT_CHARS:,}. Shorten it."
        )


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """A text-to-image request, checked against gpt-image-2's limits before anything is sent."""

    prompt: str
    options: RenderOptions = field(default_factory=RenderOptions)
    moderation: Moderation = Moderation.AUTO

    def __post_init__(self) -> None:
        _check_prompt(self.prompt)


@dataclass(frozen=True, slots=True)
class InputImage:
    """A reference image or mask, already read and decoded locally."""

    data: bytes
    mime_type: str
    width: int
    height: int
    source: str
    has_alpha: bool = False

    @property
    def filename(self) -> str:
        return "image." + file_extension(self.mime_type)


@dataclass(frozen=True, slots=True)
class EditRequest:
    """An edit or composition of 1..16 reference images, with an optional mask."""

    prompt: str
    images: tuple[InputImage, ...]
    mask: InputImage | None = None
    options: RenderOptions = field(default_factory=RenderOptions)
    session_id: str | None = None
    """The edit session this request is a turn of, if any (the fake backend draws it; the APIs ignore it)."""
    turn: int | None = None

    def __post_init__(self) -> None:
        _check_prompt(self.prompt)
        if not 1 <= len(self.images) <= MAX_EDIT_INPUTS:
            raise InvalidRequest(f"Give 1..{MAX_EDIT_INPUTS} reference images (got {len(self.images)}).")
        for image in self.images:
            if len(image.data) >= MAX_INPUT_BYTES:
                raise InputImageError(
                    f"{image.source} is {len(image.data):,} bytes; each image must be under 50 MB. "
                    "Downscale or recompress it."
                )
        if self.mask is not None:
            self._check_mask(self.mask, self.images[0])

    @staticmethod
    def _check_mask(mask: InputImage, first: InputImage) -> None:
        if mask.mime_type != "image/png":
            raise InputImageError(
                f"The {mask.source} is {mask.mime_type}; it must be a PNG with an alpha channel."
            )
        if not mask.has_alpha:
            raise InputImageError(
                f"The {mask.source} has no alpha channel: make the areas to edit transparent "
                "(alpha 0) in an RGBA PNG."
            )
        if len(mask.data) >= MAX_MASK_BYTES:
            raise InputImageError(f"The {mask.source} is {len(mask.data):,} bytes; it must be under 4 MB.")
        if (mask.width, mask.height) != (first.width, first.height):
            raise InputImageError(
                f"The mask is {mask.width}x{mask.height} but the first image is "
                f"{first.width}x{first.height}: resize the mask to match the first image."
            )


@dataclass(frozen=True, slots=True)
class Usage:
    """Token usage as the API reports it."""

    input_text_tokens: int = 0
    input_image_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    """Text input tokens served from the prompt cache (priced lower); part of input_text_tokens."""
    host_model: str | None = None
    host_input_tokens: int = 0
    host_output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return (
            self.input_text_tokens
            + self.input_image_tokens
            + self.output_tokens
            + self.host_input_tokens
            + self.host_output_tokens
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "input_text_tokens": self.input_text_tokens,
            "input_image_tokens": self.input_image_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass(frozen=True, slots=True)
class GeneratedImage:
    """Image bytes as the backend returned them."""

    data: bytes
    output_format: OutputFormat
    revised_prompt: str | None = None


@dataclass(frozen=True, slots=True)
class BackendResult:
    """What one backend call produced."""

    images: tuple[GeneratedImage, ...]
    usage: Usage | None
    route: Route
    applied: dict[str, object] = field(default_factory=dict)
    request_id: str | None = None
    placeholder: bool = False
    notes: tuple[str, ...] = ()
    unpriced_images: int = 0
    """Images whose output tokens the usage does not cover (the Responses route): estimated per image."""


@dataclass(frozen=True, slots=True)
class ArrivedImage:
    """An image the API returned, read but not yet saved: the id it will be catalogued under, its bytes and what
    they are."""

    image_id: str
    data: bytes
    width: int
    height: int
    mime_type: str

    @property
    def readable(self) -> bool:
        """Whether the bytes are an image the codec can read (an unreadable one is saved, then reported)."""
        return self.width > 0


@dataclass(frozen=True, slots=True)
class SavedImage:
    """An image on disk."""

    path: str
    filename: str
    width: int
    height: int
    size_bytes: int
    mime_type: str
    rescued: bool = False
    file_id: tuple[int, int] | None = None
    """(device, inode) of the file as written: a later read serves only that same file."""
    image_id: str | None = None
    """The image's stable id in the catalogue (its resource URI is image://<id>)."""


@dataclass(frozen=True, slots=True)
class Preview:
    """A downscaled copy of an image, small enough to show inline."""

    data: bytes
    mime_type: str
    width: int
    height: int
