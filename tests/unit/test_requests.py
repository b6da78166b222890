import pytest

from gpt_image_2_mcp.domain.errors import InputImageError, InvalidRequest
from gpt_image_2_mcp.domain.values import (
    Background,
    EditRequest,
    GenerationRequest,
    InputImage,
    OutputFormat,
    RenderOptions,
)


def image(w=1024, h=1024, mime="image/png", alpha=False, size=10):
    return InputImage(b"x" * size, mime, w, h, "test image", alpha)


@pytest.mark.parametrize("prompt", ["", "   ", "x" * 32_001])
def test_empty_or_overlong_prompts_are_refused(prompt):
    with pytest.raises(InvalidRequest):
        GenerationRequest(prompt)


def test_a_32000_character_prompt_is_fine():
    assert GenerationRequest("x" * 32_000).prompt


@pytest.mark.parametrize("kwargs, fragment", [
    ({"n": 0}, "n must be"), ({"n": 11}, "n must be"),
    ({"output_compression": 50}, "jpeg and webp only"),
    ({"output_format": OutputFormat.JPEG, "output_compression": 101}, "0..100"),
    ({"background": Background.TRANSPARENT, "output_format": OutputFormat.JPEG}, "png or webp"),
    ({"partial_images": 4}, "partial_images"),
    ({"partial_images": 2, "n": 2}, "n=1 only"),
])
def test_render_options_refuse_impossible_combinations(kwargs, fragment):
    with pytest.raises(InvalidRequest, match=fragment):
        RenderOptions(**kwargs)


def test_edits_take_one_to_sixteen_images():
    with pytest.raises(InvalidRequest):
        EditRequest("p", ())
    with pytest.raises(InvalidRequest):
        EditRequest("p", tuple(image() for _ in range(17)))
    assert len(EditRequest("p", tuple(image() for _ in range(16))).images) == 16


@pytest.mark.parametrize("mask, fragment", [
    (image(alpha=False), "no alpha channel"),
    (image(mime="image/jpeg", alpha=True), "must be a PNG"),
    (image(512, 512, alpha=True), "resize the mask"),
    (image(alpha=True, size=4 * 1024 * 1024), "under 4 MB"),
])
def test_a_mask_must_be_a_small_png_with_alpha_the_size_of_the_first_image(mask, fragment):
    with pytest.raises(InputImageError, match=fragment):
        EditRequest("p", (image(),), mask)


def test_a_good_mask_is_accepted():
    assert EditRequest("p", (image(),), image(alpha=True)).mask is not None
