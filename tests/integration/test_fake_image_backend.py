"""The offline fake backend behaves like a real adapter: bounded memory, off-loop drawing, honest placeholders."""

from __future__ import annotations

import dataclasses
import io

from PIL import Image

from gpt_image_2_mcp.adapters.fake_image_backend import FakeImageBackend
from gpt_image_2_mcp.domain.values import (
    EditRequest,
    GenerationRequest,
    ImageSize,
    InputImage,
    RenderOptions,
)

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
