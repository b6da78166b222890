"""Output settings: gpt-image-2's sizes and their rules, quality, format, background, and how settings combine."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from typing import TypeVar

from .errors import InvalidRequest

MAX_IMAGES_PER_CALL = 10
MAX_PARTIAL_IMAGES = 3

MAX_EDGE = 3840
MIN_PIXELS = 655_360
MAX_PIXELS = 8_294_400
PRESET_SIZES = ("1024x1024", "1536x1024", "1024x1536")
SIZE_RULES = (
    "size must be 'auto', one of 1024x1024, 1536x1024, 1024x1536, or a custom WxH whose edges are "
    f"multiples of 16, at most {MAX_EDGE} px, with an aspect ratio within 1:3..3:1 and "
    f"{MIN_PIXELS:,}..{MAX_PIXELS:,} pixels in total"
)

_E = TypeVar("_E", bound=StrEnum)
_SIZE_PATTERN = re.compile(r"^\s*(\d+)\s*[xX×*]\s*(\d+)\s*$")


class Quality(StrEnum):
    AUTO = "auto"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class OutputFormat(StrEnum):
    PNG = "png"
    JPEG = "jpeg"
    WEBP = "webp"

    @property
    def mime_type(self) -> str:
        return f"image/{self.value}"


class Background(StrEnum):
    AUTO = "auto"
    OPAQUE = "opaque"
    TRANSPARENT = "transparent"


class Moderation(StrEnum):
    AUTO = "auto"
    LOW = "low"


@dataclass(frozen=True, slots=True)
class ImageSize:
    """A gpt-image-2 size: 'auto', a preset, or a custom WxH that obeys the model's rules."""

    width: int | None = None
    height: int | None = None

    def __post_init__(self) -> None:
        if (self.width is None) != (self.height is None):
            raise InvalidRequest(f"Give both edges of the size. {SIZE_RULES}.")
        if self.width is None or self.height is None:
            return
        w, h = self.width, self.height
        problems = []
        if w % 16 or h % 16:
            problems.append("both edges must be multiples of 16")
        if max(w, h) > MAX_EDGE:
            problems.append(f"the longest edge must be at most {MAX_EDGE} px")
        if max(w, h) > 3 * min(w, h):
            problems.append("the aspect ratio must be within 1:3..3:1")
        if not MIN_PIXELS <= w * h <= MAX_PIXELS:
            problems.append(f"the total must be {MIN_PIXELS:,}..{MAX_PIXELS:,} pixels (got {w * h:,})")
        if problems:
            suggestion = ImageSize.nearest_valid(w, h)
            raise InvalidRequest(
                f"Size {w}x{h} is not accepted by gpt-image-2: {'; '.join(problems)}. "
                f"The nearest valid size is {suggestion}; or use 'auto'."
            )

    @classmethod
    def parse(cls, text: str | None) -> ImageSize:
        """Read 'auto', '1024x1024', ' 1536 X 1024 ' and the like; anything else is refused."""
        if text is None or text.strip().lower() in ("", "auto"):
            return cls()
        match = _SIZE_PATTERN.match(text)
        if not match:
            raise InvalidRequest(f"Cannot read size {text!r}. {SIZE_RULES}.")
        return cls(int(match.group(1)), int(match.group(2)))

    @staticmethod
    def nearest_valid(width: int, height: int) -> str:
        """A valid size close to the wanted one: same orientation, ratio and pixel count where allowed."""
        ratio = min(3.0, max(1 / 3, max(width, 1) / max(height, 1)))
        pixels = min(MAX_PIXELS, max(MIN_PIXELS, width * height))
        ideal_h = (pixels / ratio) ** 0.5
        ideal_w = ideal_h * ratio
        shrink = min(1.0, MAX_EDGE / max(ideal_w, ideal_h))
        ideal_w, ideal_h = ideal_w * shrink, ideal_h * shrink
        candidates = (
            (w, h)
            for h in range(max(16, int(ideal_h) // 16 * 16 - 160), int(ideal_h) + 176, 16)
            for w in range(max(16, int(ideal_w) // 16 * 16 - 160), int(ideal_w) + 176, 16)
            if max(w, h) <= MAX_EDGE and max(w, h) <= 3 * min(w, h) and MIN_PIXELS <= w * h <= MAX_PIXELS
        )
        w, h = min(candidates, key=lambda c: abs(c[0] - ideal_w) + abs(c[1] - ideal_h))
        return f"{w}x{h}"

    @property
    def is_auto(self) -> bool:
        return self.width is None

    @property
    def pixels(self) -> int | None:
        return None if self.width is None or self.height is None else self.width * self.height

    def __str__(self) -> str:
        return "auto" if self.is_auto else f"{self.width}x{self.height}"


@dataclass(frozen=True, slots=True)
class RenderOptions:
    """The output settings shared by generation and editing."""

    size: ImageSize = field(default_factory=ImageSize)
    quality: Quality = Quality.AUTO
    n: int = 1
    background: Background = Background.AUTO
    output_format: OutputFormat = OutputFormat.PNG
    output_compression: int | None = None
    user: str | None = None
    partial_images: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.n <= MAX_IMAGES_PER_CALL:
            raise InvalidRequest(f"n must be 1..{MAX_IMAGES_PER_CALL} (got {self.n}).")
        if self.output_compression is not None:
            if not 0 <= self.output_compression <= 100:
                raise InvalidRequest(f"output_compression must be 0..100 (got {self.output_compression}).")
            if self.output_format is OutputFormat.PNG:
                raise InvalidRequest(
                    "output_compression applies to jpeg and webp only: set output_format to 'jpeg' or "
                    "'webp', or leave output_compression out."
                )
        if self.background is Background.TRANSPARENT and self.output_format is OutputFormat.JPEG:
            raise InvalidRequest("A transparent background needs png or webp output, not jpeg.")
        if not 0 <= self.partial_images <= MAX_PARTIAL_IMAGES:
            raise InvalidRequest(f"partial_images must be 0..{MAX_PARTIAL_IMAGES} (got {self.partial_images}).")
        if self.partial_images and self.n != 1:
            raise InvalidRequest("partial_images (streaming) works with n=1 only: set n to 1 or partial_images to 0.")

    def applied(self) -> dict[str, object]:
        """The settings as they go to the API, for results and logs."""
        out: dict[str, object] = {
            "size": str(self.size),
            "quality": self.quality.value,
            "n": self.n,
            "background": self.background.value,
            "output_format": self.output_format.value,
        }
        if self.output_compression is not None:
            out["output_compression"] = self.output_compression
        if self.partial_images:
            out["partial_images"] = self.partial_images
        return out


def _choice(kind: type[_E], value: str | None, name: str) -> _E | None:
    if value is None:
        return None
    try:
        return kind(value.strip().lower())
    except ValueError:
        accepted = ", ".join(repr(member.value) for member in kind)
        raise InvalidRequest(f"{name} {value!r} is not one of {accepted}.") from None


@dataclass(frozen=True, slots=True)
class RenderOverrides:
    """The output settings a caller gave explicitly; None keeps the base value.

    This is the one way RenderOptions are made from what a caller typed (tools, sessions, CLI), so the
    rules for combining settings live here.
    """

    size: ImageSize | None = None
    quality: Quality | None = None
    n: int | None = None
    background: Background | None = None
    output_format: OutputFormat | None = None
    output_compression: int | None = None
    user: str | None = None
    partial_images: int | None = None

    @classmethod
    def parse(
        cls,
        *,
        size: str | None = None,
        quality: str | None = None,
        n: int | None = None,
        background: str | None = None,
        output_format: str | None = None,
        output_compression: int | None = None,
        user: str | None = None,
        partial_images: int | None = None,
    ) -> RenderOverrides:
        """Read settings as a caller typed them; a value that is not accepted says what is."""
        return cls(
            size=None if size is None else ImageSize.parse(size),
            quality=_choice(Quality, quality, "quality"),
            n=n,
            background=_choice(Background, background, "background"),
            output_format=_choice(OutputFormat, output_format, "output_format"),
            output_compression=output_compression,
            user=(user or "").strip() or None,
            partial_images=partial_images,
        )

    def apply_to(self, base: RenderOptions) -> RenderOptions:
        """`base` with these settings in place. Raises InvalidRequest if the combination is impossible."""
        changes = {f.name: value for f in fields(self) if (value := getattr(self, f.name)) is not None}
        format_changes = self.output_format is not None and self.output_format is not base.output_format
        if format_changes and self.output_compression is None:
            # The base's compression was chosen for its format (and png takes none): it does not carry over.
            changes["output_compression"] = None
        return replace(base, **changes)
