"""The one price table, and the cost arithmetic built on it (USD)."""

from __future__ import annotations

from collections.abc import Sequence

from .render_settings import ImageSize, Quality, RenderOptions
from .values import Usage

PER_MILLION = {
    "text_in": 5.00,
    "text_in_cached": 1.25,
    "text_out": 10.00,
    "image_in": 8.00,
    "image_in_cached": 2.00,
    "image_out": 30.00,
}

# Approximate price of one output image, by quality, for a square and a portrait/landscape preset.
PER_IMAGE = {
    Quality.LOW: {"square": 0.006, "oblong": 0.005},
    Quality.MEDIUM: {"square": 0.053, "oblong": 0.041},
    Quality.HIGH: {"square": 0.211, "oblong": 0.165},
}

# Host models the Responses-API edit route may use: (input, output) USD per 1M text tokens.
HOST_MODELS = {
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
}

_SQUARE_PIXELS = 1024 * 1024
_OBLONG_PIXELS = 1024 * 1536


def estimate_image_cost(size: ImageSize, quality: Quality) -> float:
    """Approximate price of one image. 'auto' size counts as 1024x1024, 'auto' quality as medium."""
    prices = PER_IMAGE.get(quality, PER_IMAGE[Quality.MEDIUM])
    if size.is_auto or size.width == size.height:
        base, base_pixels = prices["square"], _SQUARE_PIXELS
    else:
        base, base_pixels = prices["oblong"], _OBLONG_PIXELS
    pixels = size.pixels or base_pixels
    return base * pixels / base_pixels


TOKENS_PER_INPUT_MEGAPIXEL = 1024
"""Image input tokens a reference image is counted at, per megapixel begun (an approximation; the API's usage
then says what it really was)."""
PARTIAL_IMAGE_TOKENS = 100
"""The extra output tokens each streamed partial image costs."""


def input_image_tokens(width: int, height: int) -> int:
    return max(1, -(-width * height // 1_048_576)) * TOKENS_PER_INPUT_MEGAPIXEL


def estimate_cost(options: RenderOptions, input_sizes: Sequence[tuple[int, int]] = ()) -> float:
    """Pre-flight estimate for a whole call: its output images, their partial images and, for an edit, its
    reference images (16 large ones cost more than the image made from them)."""
    images = estimate_image_cost(options.size, options.quality) * options.n
    partials = options.partial_images * PARTIAL_IMAGE_TOKENS * PER_MILLION["image_out"] / 1_000_000
    inputs = sum(input_image_tokens(w, h) for w, h in input_sizes) * PER_MILLION["image_in"] / 1_000_000
    return round(images + partials + inputs, 6)


def cost_from_usage(usage: Usage) -> float:
    """Price of what the Images API reported."""
    cached = min(usage.cached_input_tokens, usage.input_text_tokens)
    dollars = (
        (usage.input_text_tokens - cached) * PER_MILLION["text_in"]
        + cached * PER_MILLION["text_in_cached"]
        + usage.input_image_tokens * PER_MILLION["image_in"]
        + usage.output_tokens * PER_MILLION["image_out"]
    ) / 1_000_000
    if usage.host_model:
        host_in, host_out = HOST_MODELS.get(usage.host_model, (0.0, 0.0))
        dollars += (usage.host_input_tokens * host_in + usage.host_output_tokens * host_out) / 1_000_000
    return round(dollars, 6)


def host_model_is_priced(model: str) -> bool:
    return model in HOST_MODELS
