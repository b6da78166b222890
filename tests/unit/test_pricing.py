import pytest

from gpt_image_2_mcp.domain.pricing import cost_from_usage, estimate_cost, estimate_image_cost
from gpt_image_2_mcp.domain.render_settings import ImageSize, Quality, RenderOptions
from gpt_image_2_mcp.domain.values import Usage


@pytest.mark.parametrize("quality, size, price", [
    (Quality.LOW, "1024x1024", 0.006), (Quality.LOW, "1024x1536", 0.005),
    (Quality.MEDIUM, "1024x1024", 0.053), (Quality.MEDIUM, "1536x1024", 0.041),
    (Quality.HIGH, "1024x1024", 0.211), (Quality.HIGH, "1024x1536", 0.165),
])
def test_presets_cost_what_the_price_list_says(quality, size, price):
    assert estimate_image_cost(ImageSize.parse(size), quality) == pytest.approx(price)


def test_auto_counts_as_a_medium_square():
    assert estimate_image_cost(ImageSize(), Quality.AUTO) == pytest.approx(0.053)


def test_larger_custom_sizes_cost_proportionally_more():
    four_k = estimate_image_cost(ImageSize(3840, 2160), Quality.HIGH)
    assert four_k == pytest.approx(0.165 * 3840 * 2160 / (1024 * 1536))


def test_the_estimate_scales_with_n():
    one = estimate_cost(RenderOptions(quality=Quality.LOW))
    assert estimate_cost(RenderOptions(quality=Quality.LOW, n=4)) == pytest.approx(4 * one)


def test_usage_is_priced_per_token_kind():
    usage = Usage(input_text_tokens=1_000_000, input_image_tokens=1_000_000, output_tokens=1_000_000)
    assert cost_from_usage(usage) == pytest.approx(5 + 8 + 30)


def test_host_model_text_is_priced_when_known():
    usage = Usage(host_model="gpt-4.1-mini", host_input_tokens=1_000_000, host_output_tokens=1_000_000)
    assert cost_from_usage(usage) == pytest.approx(0.40 + 1.60)


def test_the_estimate_counts_reference_images_and_partial_images():
    # 16 references of 2 MP each: 32,768 image input tokens ($0.26), more than the low-quality image itself.
    options = RenderOptions(quality=Quality.LOW, size=ImageSize.parse("1024x1024"))
    alone = estimate_cost(options)
    with_inputs = estimate_cost(options, [(2048, 1024)] * 16)
    assert with_inputs == pytest.approx(alone + 16 * 2 * 1024 * 8.00 / 1_000_000)
    streamed = estimate_cost(RenderOptions(quality=Quality.LOW, size=ImageSize.parse("1024x1024"), partial_images=3))
    assert streamed == pytest.approx(alone + 3 * 100 * 30.00 / 1_000_000)
