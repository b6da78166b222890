"""The offline fake backend behaves like a real adapter: bounded memory, off-loop drawing, honest placeholders."""

from __future__ import annotations

import dataclasses
import io
import threading

import anyio
import anyio.to_thread
import pytest
from PIL import Image, ImageChops, ImageDraw, ImageFont

from gpt_image_2_mcp.adapters import fake_image_backend as fake_module
from gpt_image_2_mcp.adapters import placeholder_fonts
from gpt_image_2_mcp.adapters.fake_image_backend import FakeImageBackend
from gpt_image_2_mcp.domain.render_settings import ImageSize, RenderOptions
from gpt_image_2_mcp.domain.values import EditRequest, GenerationRequest, InputImage

SMALL = RenderOptions(size=ImageSize(1024, 1024))


def encoded(color=(255, 0, 0), size=(256, 256), fmt="PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, fmt)
    return buffer.getvalue()


def input_image(color=(255, 0, 0), size=(256, 256), fmt="PNG") -> InputImage:
    return InputImage(encoded(color, size, fmt), f"image/{fmt.lower()}", size[0], size[1], "image 1")


def edit_request(prompt="make it pop", color=(255, 0, 0), **fields) -> EditRequest:
    return EditRequest(prompt, (input_image(color),), **fields)


def holds_bytes(value, depth=0) -> bool:
    """Whether value, or anything reachable through its dataclass fields and tuples, is bytes."""
    if isinstance(value, bytes | bytearray | memoryview):
        return True
    if depth > 5:
        return False
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return any(holds_bytes(getattr(value, f.name), depth + 1) for f in dataclasses.fields(value))
    if isinstance(value, tuple | list):
        return any(holds_bytes(v, depth + 1) for v in value)
    return False


# 1. Memory: a bounded record of summaries, never the input bytes.


async def test_the_call_record_is_bounded_and_keeps_no_image_bytes():
    backend = FakeImageBackend(history=3)
    for index in range(5):
        await backend.edit(edit_request(f"edit {index}"))
    await backend.generate(GenerationRequest("last", SMALL))
    assert [c.prompt for c in backend.calls] == ["edit 3", "edit 4", "last"]
    assert [c.kind for c in backend.calls] == ["edit", "edit", "generate"]
    edit = backend.calls[0]
    assert (edit.images[0].width, edit.images[0].height, edit.images[0].mime_type) == (256, 256, "image/png")
    assert edit.images[0].size_bytes == len(encoded())
    assert not any(holds_bytes(c) for c in backend.calls)


async def test_by_default_the_record_is_bounded_and_it_can_be_switched_off():
    assert FakeImageBackend().calls.maxlen is not None
    silent = FakeImageBackend(history=0)
    await silent.edit(edit_request())
    assert len(silent.calls) == 0


# 2. Drawing happens in worker threads: the event loop keeps serving other calls meanwhile.


def record_render_threads(monkeypatch) -> list[int]:
    """Make the module's renderer note which thread each picture is drawn on."""
    threads: list[int] = []
    original = fake_module.render

    def recording(*args, **kwargs):
        threads.append(threading.get_ident())
        return original(*args, **kwargs)

    monkeypatch.setattr(fake_module, "render", recording)
    return threads


async def test_pictures_and_partials_are_drawn_off_the_event_loop_thread(monkeypatch):
    threads = record_render_threads(monkeypatch)
    partials: list[int] = []

    async def on_partial(index, data):
        partials.append(index)

    backend = FakeImageBackend()
    await backend.generate(GenerationRequest("x", RenderOptions(size=ImageSize(1024, 1024), partial_images=2)),
                           on_partial)
    await backend.edit(edit_request(options=RenderOptions(n=2)))
    assert partials == [0, 1]
    assert len(threads) == 5
    assert threading.get_ident() not in threads


async def test_the_event_loop_runs_other_tasks_while_a_big_picture_is_drawn(monkeypatch):
    """The renderer waits until a task on the loop has run; drawn on the loop, it would wait in vain."""
    drawing, loop_ran, waits = threading.Event(), threading.Event(), []
    original = fake_module.render

    def render_once_the_loop_ran(*args, **kwargs):
        drawing.set()
        waits.append(loop_ran.wait(timeout=10))
        return original(*args, **kwargs)

    monkeypatch.setattr(fake_module, "render", render_once_the_loop_ran)

    async def other_task():
        # Resuming after the wait needs the loop: it cannot happen while the loop itself draws.
        await anyio.to_thread.run_sync(drawing.wait, 10)
        loop_ran.set()

    async with anyio.create_task_group() as group:
        group.start_soon(other_task)
        result = await FakeImageBackend(latency_s=0).generate(
            GenerationRequest("big", RenderOptions(size=ImageSize(3840, 2160)))
        )
    assert waits == [True]
    with Image.open(io.BytesIO(result.images[0].data)) as decoded:
        assert decoded.size == (3840, 2160)


# 3. Text: a font with wide coverage where the system has one, and '?' rather than boxes for what it lacks.

MIXED = "Café Жук 東京タワー 😀 \U0010fffd done"


def system_font_installed() -> bool:
    try:
        ImageFont.truetype("DejaVuSans.ttf", 12)
    except OSError:
        return False
    return True


def test_the_glyph_check_knows_a_drawn_letter_from_a_missing_one():
    assert placeholder_fonts.font_covers("A")
    assert placeholder_fonts.font_covers(" ")
    assert not placeholder_fonts.font_covers("\U0010fffd")


def test_characters_the_font_lacks_become_question_marks():
    shown = placeholder_fonts.drawable(MIXED)
    assert len(shown) == len(MIXED)
    assert all((s == c and placeholder_fonts.font_covers(c)) or s == "?" for s, c in zip(shown, MIXED, strict=True))
    assert shown.startswith("Caf") and shown.endswith("? done")


@pytest.mark.skipif(not system_font_installed(), reason="needs DejaVu Sans, as most Linux systems have")
def test_a_system_font_with_wide_coverage_is_used_where_one_is_installed():
    assert all(placeholder_fonts.font_covers(c) for c in "éÅßЖжλ€")  # Pillow's built-in font has none of these


@pytest.fixture
def drawn_text(monkeypatch) -> list[str]:
    """Every text block drawn on a picture during the test, in order."""
    drawn: list[str] = []
    original = ImageDraw.ImageDraw.multiline_text

    def noting(self, xy, text, *args, **kwargs):
        drawn.append(text)
        return original(self, xy, text, *args, **kwargs)

    monkeypatch.setattr(ImageDraw.ImageDraw, "multiline_text", noting)
    return drawn


async def test_a_prompt_in_any_script_renders_and_no_missing_glyph_is_drawn(drawn_text):
    drawn = drawn_text
    result = await FakeImageBackend().generate(GenerationRequest(MIXED, SMALL))
    with Image.open(io.BytesIO(result.images[0].data)) as decoded:
        assert decoded.size == (1024, 1024)
    assert drawn and all(placeholder_fonts.font_covers(c) for text in drawn for c in text.replace("\n", ""))


@pytest.fixture
def no_system_fonts(monkeypatch):
    """As on a slim container image: none of the preferred fonts is installed."""

    def clear():
        for cached in (placeholder_fonts._font_file, placeholder_fonts.font, placeholder_fonts.font_covers):
            cached.cache_clear()

    monkeypatch.setattr(placeholder_fonts, "_FONT_FILES", ("no-such-font-anywhere.ttf",))
    clear()
    yield
    clear()


async def test_without_a_system_font_the_built_in_one_is_used_and_still_draws_no_boxes(no_system_fonts):
    assert placeholder_fonts._font_file() is None
    assert placeholder_fonts.font_covers("A") and not placeholder_fonts.font_covers("東")
    assert placeholder_fonts.drawable("A東") == "A?"
    result = await FakeImageBackend().generate(GenerationRequest(MIXED, SMALL))
    assert result.images[0].data.startswith(b"\x89PNG")


# 4. Edits show a thumbnail of their first input and, in a session, the session and turn.


def red_pixels(data: bytes) -> int:
    """How many pixels are clearly red (R >= 200, G and B <= 40)."""
    with Image.open(io.BytesIO(data)) as decoded:
        r, g, b = decoded.convert("RGB").split()
    high_r, low_g, low_b = r.point(lambda v: 255 * (v >= 200)), g.point(lambda v: 255 * (v <= 40)), b.point(
        lambda v: 255 * (v <= 40))
    return ImageChops.darker(ImageChops.darker(high_r, low_g), low_b).histogram()[255]


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
async def test_an_edit_shows_its_input_and_a_generation_does_not(fmt):
    backend = FakeImageBackend()
    same_size = RenderOptions(size=ImageSize(1024, 1024))
    edited = await backend.edit(EditRequest("make it pop", (input_image(fmt=fmt),), options=same_size))
    generated = await backend.generate(GenerationRequest("make it pop", same_size))
    assert red_pixels(edited.images[0].data) > 1024 * 1024 // 20  # the thumbnail is a ninth of the picture
    assert red_pixels(generated.images[0].data) == 0


async def test_edits_of_different_inputs_differ_and_the_same_edit_is_drawn_the_same():
    backend = FakeImageBackend()
    red, blue, red_again = [await backend.edit(edit_request(color=c)) for c in ((255, 0, 0), (0, 0, 255), (255, 0, 0))]
    assert red.images[0].data != blue.images[0].data
    assert red.images[0].data == red_again.images[0].data


async def test_generating_is_deterministic():
    backend = FakeImageBackend()
    first, second = [await backend.generate(GenerationRequest("a red fox", SMALL)) for _ in range(2)]
    assert first.images[0].data == second.images[0].data


async def test_an_edit_in_a_session_shows_the_session_and_turn(drawn_text):
    drawn = drawn_text
    backend = FakeImageBackend()
    turn_2 = await backend.edit(edit_request(session_id="sess-42", turn=2))
    turn_3 = await backend.edit(edit_request(session_id="sess-42", turn=3))
    alone = await backend.edit(edit_request())
    assert "session sess-42 · turn 2" in drawn[0] and "turn 3" in drawn[1] and "session" not in drawn[2]
    assert len({turn_2.images[0].data, turn_3.images[0].data, alone.images[0].data}) == 3
    assert (backend.calls[0].session_id, backend.calls[0].turn) == ("sess-42", 2)


async def test_an_input_that_cannot_be_decoded_still_gets_a_placeholder():
    broken = InputImage(b"not an image at all", "image/png", 64, 64, "image 1")
    result = await FakeImageBackend().edit(EditRequest("x", (broken,)))
    with Image.open(io.BytesIO(result.images[0].data)) as decoded:
        assert decoded.size == (64, 64)
