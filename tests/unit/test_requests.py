from dataclasses import replace

import pytest

from gpt_image_2_mcp.domain.errors import InputImageError, InvalidRequest
from gpt_image_2_mcp.domain.render_settings import (
    Background,
    ImageSize,
    OutputFormat,
    Quality,
    RenderOptions,
    RenderOverrides,
)
from gpt_image_2_mcp.domain.values import EditRequest, GenerationRequest, InputImage


def image(w=1024, h=1024, mime="image/png", alpha=False, size=10):
    return InputImage(b"x" * size, mime, w, h, "test image", alpha)


@pytest.mark.parametrize("prompt", ["", "   ", "x" * 32_001])
def test_empty_or_overlong_prompts_are_refused(prompt):
    with pytest.raises(InvalidRequest):
        GenerationRequest(prompt)


def test_a_32000_character_prompt_is_kept_whole():
    assert len(GenerationRequest("x" * 32_000).prompt) == 32_000


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
    sixteen = tuple(image(w=100 + i) for i in range(16))
    assert EditRequest("p", sixteen).images == sixteen


@pytest.mark.parametrize("mask, fragment", [
    (image(alpha=False), "no alpha channel"),
    (image(mime="image/jpeg", alpha=True), "must be a PNG"),
    (image(512, 512, alpha=True), "resize the mask"),
    (image(alpha=True, size=4 * 1024 * 1024), "under 4 MB"),
])
def test_a_mask_must_be_a_small_png_with_alpha_the_size_of_the_first_image(mask, fragment):
    with pytest.raises(InputImageError, match=fragment):
        EditRequest("p", (image(),), mask)


def test_a_good_mask_is_accepted_as_given():
    mask = image(alpha=True)
    assert EditRequest("p", (image(),), mask).mask is mask


def test_overrides_keep_every_setting_they_do_not_name():
    base = RenderOptions(size=ImageSize(1536, 1024), quality=Quality.LOW, n=2, output_format=OutputFormat.WEBP,
                         output_compression=40, user="u1")
    assert RenderOverrides().apply_to(base) == base
    assert RenderOverrides(quality=Quality.HIGH).apply_to(base) == replace(base, quality=Quality.HIGH)


def test_a_new_output_format_drops_the_old_compression_unless_given_again():
    base = RenderOptions(output_format=OutputFormat.JPEG, output_compression=50)
    assert RenderOverrides(output_format=OutputFormat.PNG).apply_to(base).output_compression is None
    webp = RenderOverrides(output_format=OutputFormat.WEBP, output_compression=70).apply_to(base)
    assert (webp.output_format, webp.output_compression) == (OutputFormat.WEBP, 70)
    same_format = RenderOverrides(output_format=OutputFormat.JPEG).apply_to(base)
    assert same_format.output_compression == 50


def test_overrides_that_make_an_impossible_combination_are_refused():
    base = RenderOptions(output_format=OutputFormat.PNG)
    with pytest.raises(InvalidRequest, match="jpeg and webp only"):
        RenderOverrides(output_compression=50).apply_to(base)


@pytest.mark.parametrize("field, value, fragment", [
    ("quality", "ultra", "quality 'ultra' is not one of 'auto', 'low', 'medium', 'high'"),
    ("background", "none", "background 'none'"),
    ("output_format", "gif", "output_format 'gif'"),
    ("size", "huge", "Cannot read size"),
])
def test_parsing_typed_settings_names_what_is_accepted(field, value, fragment):
    with pytest.raises(InvalidRequest, match=fragment):
        RenderOverrides.parse(**{field: value})


def test_parsing_reads_text_as_a_user_types_it():
    parsed = RenderOverrides.parse(size=" 1536 X 1024 ", quality="HIGH", output_format="Jpeg", user="  ")
    assert (str(parsed.size), parsed.quality, parsed.output_format, parsed.user) == (
        "1536x1024", Quality.HIGH, OutputFormat.JPEG, None)
