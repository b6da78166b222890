"""What a result tells: the revised prompt, cached-token pricing, nothing secret echoed back, how an image was
shown, readable times; and resources/read serves only the file the server wrote."""

import base64
import io
import os
from datetime import datetime
from pathlib import Path

import pytest
from mcp.client import Client
from mcp.shared.exceptions import MCPError
from PIL import Image

from gpt_image_2_mcp.domain.pricing import PER_MILLION
from gpt_image_2_mcp.entrypoints.mcp_server import build_server
from tests.conftest import make_container, write_png
from tests.fakes.fake_openai_server import FakeOpenAIServer, Scripted, encoded_image

KEY = "sk-proj-ECHOCANARY-0123456789abcdef"


def api_answer(**extra):
    usage = {"input_tokens": 1000, "output_tokens": 2000, "total_tokens": 3000,
             "input_tokens_details": {"text_tokens": 1000, "image_tokens": 0, "cached_tokens": 800}}
    image = {"b64_json": base64.b64encode(encoded_image(1024, 1024, "png")).decode(), **extra.pop("image", {})}
    return {"created": 1, "data": [image], "usage": usage, **extra}


def openai_server_for(fake, tmp_path):
    container = make_container(api_key=KEY, base_url=fake.base_url, output_dir=str(tmp_path / "out"))
    return build_server(container)


async def test_a_revised_prompt_is_shown_and_cached_tokens_are_priced_as_cached(tmp_path):
    with FakeOpenAIServer() as fake:
        fake.script("generations", Scripted(json=api_answer(image={"revised_prompt": "a RED fox at dusk"})))
        async with Client(openai_server_for(fake, tmp_path), mode="legacy") as client:
            result = await client.call_tool("generate_image", {"prompt": "a fox", "inline": "none"})
    assert not result.is_error, result.content[0].text
    assert "Revised prompt: a RED fox at dusk" in result.content[0].text
    assert result.structured_content["revised_prompt"] == "a RED fox at dusk"
    expected = (200 * PER_MILLION["text_in"] + 800 * PER_MILLION["text_in_cached"]
                + 2000 * PER_MILLION["image_out"]) / 1_000_000
    assert result.structured_content["cost_usd_estimated"] == pytest.approx(expected)


async def test_fewer_images_than_asked_for_are_noted_and_applied_says_how_many(tmp_path):
    with FakeOpenAIServer() as fake:
        fake.script("generations", Scripted(json=api_answer()))  # one image, whatever n was
        async with Client(openai_server_for(fake, tmp_path), mode="legacy") as client:
            result = await client.call_tool("generate_image", {"prompt": "a fox", "n": 3, "inline": "none"})
            full = await client.call_tool("generate_image", {"prompt": "two foxes", "n": 2, "inline": "none"})
    assert not result.is_error, result.content[0].text
    assert len(result.structured_content["images"]) == 1 and result.structured_content["applied"]["n"] == 1
    assert result.structured_content["requested"]["n"] == 3
    assert "Asked for 3 image(s); the API returned 1" in result.content[0].text
    assert full.structured_content["applied"]["n"] == 2 and "Asked for" not in full.content[0].text


async def test_values_the_api_echoes_back_never_carry_the_key_out(tmp_path):
    echoing = api_answer(size=f"1024x1024 {KEY}", quality=KEY)
    with FakeOpenAIServer() as fake:
        fake.script("generations", Scripted(json=echoing, headers={"x-request-id": f"req_{KEY}"}))
        async with Client(openai_server_for(fake, tmp_path), mode="legacy") as client:
            result = await client.call_tool("generate_image", {"prompt": "a fox", "inline": "none"})
    assert not result.is_error, result.content[0].text
    assert "1024x1024 [redacted]" in result.content[0].text
    assert KEY not in result.content[0].text
    assert KEY not in repr(result.structured_content)
    assert "[redacted]" in result.structured_content["applied"]["quality"]


async def test_the_text_says_how_each_image_was_shown(tmp_path):
    server = build_server(make_container(backend="fake", output_dir=str(tmp_path / "out")))
    async with Client(server, mode="legacy") as client:
        full = await client.call_tool("generate_image", {"prompt": "x", "inline": "full", "output_format": "jpeg"})
        preview = await client.call_tool("generate_image", {"prompt": "x", "size": "2048x2048"})
    assert "shown inline in full" in full.content[0].text and "inline preview" not in full.content[0].text
    assert full.structured_content["images"][0]["inline"]["shown"] == "full"
    assert "inline preview" in preview.content[0].text
    assert preview.structured_content["images"][0]["inline"]["shown"] == "preview"


async def test_session_times_are_iso_8601_with_a_time_zone(tmp_path):
    image = write_png(tmp_path / "a.png", (64, 64))
    server = build_server(make_container(backend="fake", output_dir=str(tmp_path / "out")))
    async with Client(server, mode="legacy") as client:
        await client.call_tool("start_edit_session", {"prompt": "x", "images": [str(image)], "inline": "none"})
        listed = await client.call_tool("list_edit_sessions", {})
    session = listed.structured_content["sessions"][0]
    for stamp in (session["created_at"], session["updated_at"], session["history"][0]["created_at"]):
        assert datetime.fromisoformat(stamp).utcoffset() is not None, stamp


async def read_link(client, result) -> bytes:
    link = next(b for b in result.content if b.type == "resource_link")
    contents = await client.read_resource(str(link.uri))
    return base64.b64decode(contents.contents[0].blob)


@pytest.mark.parametrize("swap", ["symlink", "replaced", "rewritten"])
async def test_resources_read_serves_only_the_file_the_server_wrote(tmp_path, swap):
    secret = tmp_path / "secret.txt"
    secret.write_text("not an image")
    server = build_server(make_container(backend="fake", output_dir=str(tmp_path / "out")))
    async with Client(server, mode="legacy") as client:
        result = await client.call_tool("generate_image", {"prompt": "x", "inline": "none"})
        path = Path(result.structured_content["images"][0]["file_path"])
        assert await read_link(client, result) == path.read_bytes()  # untouched: served
        if swap == "symlink":
            path.unlink()
            os.symlink(secret, path)
        elif swap == "replaced":
            path.unlink()
            path.write_bytes(b"\x89PNG other file")
        else:
            path.write_bytes(path.read_bytes() + b"appended")
        with pytest.raises(MCPError):
            await read_link(client, result)


@pytest.mark.parametrize(("inline", "size"), [("full", "1024x1024"), ("preview", "1024x1024"),
                                             ("preview", "2048x2048")])
async def test_the_inline_image_is_made_from_the_very_bytes_saved_without_reading_the_file_back(tmp_path, inline,
                                                                                                 size):
    container = make_container(backend="fake", output_dir=str(tmp_path / "out"))
    sink, saved = container.sink(), []
    real_save = sink.save

    def save_then_swap(data, **where):
        stored = real_save(data, **where)
        saved.append(data)
        Path(stored.path).write_bytes(encoded_image(64, 64, "jpeg"))  # another image where ours was written
        return stored

    def no_read_back(image):
        raise AssertionError("the file was read back")

    sink.save, sink.read_back = save_then_swap, no_read_back
    async with Client(build_server(container), mode="legacy") as client:
        result = await client.call_tool("generate_image", {"prompt": "x", "output_format": "jpeg", "inline": inline,
                                                           "size": size})
    assert not result.is_error, result.content[0].text
    shown = base64.b64decode(next(b for b in result.content if b.type == "image").data)
    info = result.structured_content["images"][0]
    if size == "1024x1024":  # within the preview limits: shown as saved, in either mode
        assert shown == saved[0] and info["inline"]["shown"] == "full"
    else:  # a preview of our image (its size), not of the 64x64 one swapped in after the save
        assert info["inline"]["shown"] == "preview" and info["inline"]["width"] == 1568
        with Image.open(io.BytesIO(shown)) as preview:
            assert preview.size == (1568, 1568)
