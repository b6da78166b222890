import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpt_image_2_mcp.domain.errors import InvalidRequest
from gpt_image_2_mcp.domain.render_settings import MAX_EDGE, MAX_PIXELS, MIN_PIXELS, PRESET_SIZES, ImageSize


def obeys_the_rules(w: int, h: int) -> bool:
    return w % 16 == 0 and h % 16 == 0 and max(w, h) <= MAX_EDGE and max(w, h) <= 3 * min(w, h) and (
        MIN_PIXELS <= w * h <= MAX_PIXELS
    )


@pytest.mark.parametrize("text", ["auto", "AUTO", "", "  auto "])
def test_auto_is_read_from_its_spellings(text):
    assert ImageSize.parse(text).is_auto
    assert str(ImageSize.parse(text)) == "auto"


@pytest.mark.parametrize("preset", PRESET_SIZES)
def test_presets_are_accepted(preset):
    assert str(ImageSize.parse(preset)) == preset


@pytest.mark.parametrize("text, canonical", [(" 1536 X 1024 ", "1536x1024"), ("3840x2160", "3840x2160"),
                                              ("2048×1152", "2048x1152"), ("1024 x 1024", "1024x1024")])
def test_whitespace_and_capital_x_are_tolerated_and_canonicalised(text, canonical):
    assert str(ImageSize.parse(text)) == canonical


@pytest.mark.parametrize("text, fragment", [
    ("1000x1000", "multiples of 16"),
    ("4096x2160", "at most 3840"),
    ("3840x1024", "1:3..3:1"),
    ("512x512", "pixels"),
    ("big", "Cannot read size"),
    ("1024x", "Cannot read size"),
])
def test_broken_sizes_are_refused_with_the_rule_they_break(text, fragment):
    with pytest.raises(InvalidRequest, match=fragment):
        ImageSize.parse(text)


def test_a_refusal_suggests_a_size_that_works():
    with pytest.raises(InvalidRequest) as caught:
        ImageSize.parse("1000x1000")
    suggestion = str(caught.value).split("nearest valid size is ")[1].split(";")[0]
    assert str(ImageSize.parse(suggestion)) == suggestion


def test_a_refusal_names_only_the_rule_broken_not_every_rule():
    with pytest.raises(InvalidRequest) as caught:
        ImageSize.parse("1000x1008")
    message = str(caught.value)
    assert "multiples of 16" in message
    assert "aspect ratio" not in message and "pixels in total" not in message


@given(st.one_of(st.integers(1, 5000), st.integers(1, 300).map(lambda k: k * 16)),
       st.one_of(st.integers(1, 5000), st.integers(1, 300).map(lambda k: k * 16)))
def test_a_size_is_accepted_exactly_when_it_obeys_every_rule(w, h):
    if obeys_the_rules(w, h):
        assert (ImageSize(w, h).width, ImageSize(w, h).height) == (w, h)
    else:
        with pytest.raises(InvalidRequest):
            ImageSize(w, h)


@given(st.integers(1, 20_000), st.integers(1, 20_000))
def test_the_nearest_valid_size_always_obeys_the_rules(w, h):
    suggestion = ImageSize.nearest_valid(w, h)
    sw, sh = map(int, suggestion.split("x"))
    assert obeys_the_rules(sw, sh), suggestion


@given(st.integers(0, 10_000), st.integers(0, 10_000), st.sampled_from(["x", "X", " x ", "×"]))
def test_parsing_never_fails_with_anything_but_a_clear_refusal(w, h, sep):
    try:
        size = ImageSize.parse(f"{w}{sep}{h}")
    except InvalidRequest as e:
        assert "size" in str(e).lower() or "Size" in str(e)
    else:
        assert obeys_the_rules(size.width, size.height)
