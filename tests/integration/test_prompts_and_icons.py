"""Prompts and icons through the real protocol: the SDK's client talking to the built server in-process."""

from __future__ import annotations

import base64
import json
import re
import xml.etree.ElementTree as ET

import pytest
from mcp.client import Client
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS

from gpt_image_2_mcp.domain.render_settings import ImageSize
from gpt_image_2_mcp.entrypoints.mcp_server import build_server
from tests.conftest import make_container

PROMPTS = {
    "product_shot": {"product"},
    "logo": {"brand", "business"},
    "infographic": {"topic", "exact_text"},
    "photoreal_portrait": {"subject"},
    "local_edit": {"image", "change"},
    "consistent_character": {"character", "scenes"},
}
TOOLS = {"generate_image", "edit_image", "start_edit_session", "continue_edit_session", "end_edit_session",
         "list_edit_sessions", "get_image_job"}
CALL = re.compile(r"Call `(\w+)` with these arguments:\n```json\n(.*?)\n```", re.S)


@pytest.fixture
def server(tmp_path):
    return build_server(make_container(backend="fake", output_dir=str(tmp_path / "out")))


def calls(result) -> list[tuple[str, dict]]:
    """The tool calls a prompt's message asks for: (tool, arguments), in order."""
    (message,) = result.messages
    assert message.role == "user" and message.content.type == "text"
    return [(tool, json.loads(arguments)) for tool, arguments in CALL.findall(message.content.text)]


def decoded_svg(icon) -> ET.Element:
    assert icon.mime_type == "image/svg+xml"
    prefix = "data:image/svg+xml;base64,"
    assert icon.src.startswith(prefix)
    svg = base64.b64decode(icon.src[len(prefix):], validate=True)
    assert len(svg) < 1024 and b"<script" not in svg and b"href" not in svg  # small, and nothing to run or fetch
    return ET.fromstring(svg)


async def test_prompts_list_every_prompt_with_described_arguments_and_required_flags(server):
    async with Client(server, mode="legacy") as client:
        prompts = {p.name: p for p in (await client.list_prompts()).prompts}
    assert set(prompts) == set(PROMPTS)
    for name, required in PROMPTS.items():
        prompt = prompts[name]
        assert prompt.title and prompt.description
        assert {a.name for a in prompt.arguments if a.required} == required
        assert all(a.description for a in prompt.arguments), name
        assert prompt.icons and decoded_svg(prompt.icons[0]).tag == "{http://www.w3.org/2000/svg}svg"
    aspect = next(a for a in prompts["product_shot"].arguments if a.name == "aspect")
    assert "'square', 'landscape' or 'portrait'" in aspect.description  # the accepted values are said, not hidden


async def test_a_product_shot_asks_for_generate_image_with_an_opaque_background(server):
    async with Client(server, mode="legacy") as client:
        described = await client.get_prompt("product_shot", {"product": "a matte black water bottle",
                                                             "aspect": "landscape"})
        from_photo = await client.get_prompt("product_shot", {"product": "a bottle", "reference_image": "/p/b.jpg"})
    ((tool, arguments),) = calls(described)
    assert tool == "generate_image"
    assert (arguments["size"], arguments["quality"], arguments["background"]) == ("1536x1024", "high", "opaque")
    assert "a matte black water bottle" in arguments["prompt"]
    ((tool, arguments),) = calls(from_photo)
    assert tool == "edit_image" and arguments["images"] == ["/p/b.jpg"] and arguments["background"] == "opaque"
    assert "Change only the background" in arguments["prompt"]


async def test_a_logo_draws_the_asked_variations_and_spells_the_name(server):
    async with Client(server, mode="legacy") as client:
        result = await client.get_prompt("logo", {"brand": "Nimbo", "business": "a weather app", "variations": "2",
                                                  "kind": "wordmark"})
    ((tool, arguments),) = calls(result)
    assert tool == "generate_image" and arguments["n"] == 2 and arguments["size"] == "1024x1024"
    assert '"Nimbo"' in arguments["prompt"] and "N-I-M-B-O" in arguments["prompt"]


async def test_an_infographic_quotes_every_line_of_its_exact_text_at_high_quality(server):
    text = "How tea is made\nPick the leaves\nWither\nRoll\nDry"
    async with Client(server, mode="legacy") as client:
        result = await client.get_prompt("infographic", {"topic": "tea", "exact_text": text})
    ((tool, arguments),) = calls(result)
    assert (tool, arguments["quality"], arguments["size"]) == ("generate_image", "high", "1024x1536")
    assert 'Title: "How tea is made"' in arguments["prompt"]
    assert all(f'- "{line}"' in arguments["prompt"] for line in text.splitlines()[1:])
    assert "edit_image" in result.messages[0].content.text  # how to fix a misspelled word afterwards
    assert result.messages[0].content.text.startswith("Make an infographic about tea")


async def test_text_that_holds_straight_quotes_is_quoted_with_typographic_ones(server):
    async with Client(server, mode="legacy") as client:
        sign = await client.get_prompt("infographic", {"topic": "a sign", "exact_text": 'Say "cheese"'})
        wordmark = await client.get_prompt("logo", {"brand": 'The "Q" Bar', "business": "a bar",
                                                    "kind": "wordmark"})
    assert '\u201cSay "cheese"\u201d' in calls(sign)[0][1]["prompt"]
    assert 'The name \u201cThe "Q" Bar\u201d set as' in calls(wordmark)[0][1]["prompt"]


async def test_a_portrait_is_photorealistic_with_the_asked_framing(server):
    async with Client(server, mode="legacy") as client:
        result = await client.get_prompt("photoreal_portrait", {"subject": "an old fisherman", "framing": "full-body"})
    ((tool, arguments),) = calls(result)
    assert tool == "generate_image" and arguments["quality"] == "high" and arguments["size"] == "1024x1536"
    assert "photorealistic" in arguments["prompt"] and "feet included" in arguments["prompt"]


async def test_a_local_edit_changes_only_one_thing_and_passes_the_mask_or_explains_it(server):
    async with Client(server, mode="legacy") as client:
        masked = await client.get_prompt("local_edit", {"image": "/a/room.png", "change": "make the sofa green",
                                                        "mask": "/a/sofa-mask.png"})
        unmasked = await client.get_prompt("local_edit", {"image": "/a/room.png", "change": "make the sofa green"})
    ((tool, arguments),) = calls(masked)
    assert tool == "edit_image" and arguments["images"] == ["/a/room.png"] and arguments["mask"] == "/a/sofa-mask.png"
    assert arguments["prompt"].startswith("Change only this: make the sofa green. Keep everything else exactly")
    ((_, arguments),) = calls(unmasked)
    assert "mask" not in arguments
    assert "transparent over the area to change" in unmasked.messages[0].content.text


async def test_a_consistent_character_runs_one_edit_session_scene_by_scene(server):
    async with Client(server, mode="legacy") as client:
        result = await client.get_prompt("consistent_character", {
            "character": "a girl with a yellow raincoat and red boots", "scenes": "at a bus stop\n- in a library"})
        from_picture = await client.get_prompt("consistent_character", {
            "character": "Mo", "scenes": "on a bridge", "reference_image": "/c/mo.png"})
    steps = calls(result)
    assert [tool for tool, _ in steps] == ["generate_image", "start_edit_session", "continue_edit_session"]
    for _, arguments in steps[1:]:  # the character is restated on every turn, against drift
        assert "a girl with a yellow raincoat and red boots" in arguments["prompt"]
    assert "in a library" in steps[2][1]["prompt"] and ImageSize.parse(steps[1][1]["size"]).width == 1536
    ((tool, arguments),) = calls(from_picture)
    assert tool == "start_edit_session" and arguments["images"] == ["/c/mo.png"]


@pytest.mark.parametrize(("name", "arguments", "expected"), [
    ("logo", {"brand": "Nimbo"}, "Prompt logo needs `business` (What the brand does and for whom"),
    ("logo", {"brand": "N", "business": "b", "kind": "round"},
     "`kind` was 'round'; it must be one of 'symbol', 'wordmark', 'combination' or 'app-icon'"),
    ("logo", {"brand": "N", "business": "b", "variations": "9"}, "`variations` was '9'; it must be at most 4"),
    ("product_shot", {"product": "p", "colour": "red"}, "Prompt product_shot has no argument colour; it takes"),
    ("consistent_character", {"character": "c", "scenes": "\n".join("abcdefghi")}, "one to 8 scenes, one per line"),
    ("product_shot", {"product": "  "}, "`product` was '  '; it must be text that is not blank"),
    ("local_edit", {"image": "/x.png", "change": ""}, "`change` was ''; it must be text that is not blank"),
    ("product_photo", {"product": "p"}, "There is no prompt 'product_photo'. The prompts are: product_shot, logo"),
])
async def test_bad_or_missing_prompt_arguments_are_invalid_params_that_say_what_to_fix(server, name, arguments,
                                                                                       expected):
    async with Client(server, mode="legacy") as client:
        with pytest.raises(MCPError) as raised:
            await client.get_prompt(name, arguments)
        assert (await client.get_prompt("logo", {"brand": "N", "business": "b"})).messages  # still serving
    assert raised.value.code == INVALID_PARAMS
    assert expected in raised.value.message


async def test_prompts_are_served_on_the_2026_era_too(server):
    async with Client(server) as client:
        names = {p.name for p in (await client.list_prompts()).prompts}
        result = await client.get_prompt("local_edit", {"image": "/x.png", "change": "remove the cup"})
    assert names == set(PROMPTS)
    assert calls(result)[0][0] == "edit_image"


async def test_initialize_and_tools_list_carry_embedded_svg_icons(server):
    async with Client(server, mode="legacy") as client:
        info = client.server_info
        tools = (await client.list_tools()).tools
    assert info is not None and info.icons
    assert decoded_svg(info.icons[0]).tag == "{http://www.w3.org/2000/svg}svg"
    assert {tool.name for tool in tools} == TOOLS
    sources = set()
    for tool in tools:
        (icon,) = tool.icons
        assert decoded_svg(icon).get("viewBox") == "0 0 24 24"
        sources.add(icon.src)
    assert len(sources) == len(TOOLS)  # each tool has an icon of its own
